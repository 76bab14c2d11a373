// tempered diagnose: is this model's robustness real? The fixed battery of lib/diagnose.ts on
// the same test samples, the rules applied, the verdict with its rule and evidence. Exit code
// 0 whatever the verdict; --out DIR writes diagnosis.json and the HTML page.
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command } from 'commander';
import { BATTERY, checkDiagnoseOptions, diagnose, Diagnosis, RULES, THRESHOLDS, availableSteps } from '../../diagnose';
import { ensureWritableDir } from '../../fsutil';
import { Model } from '../../model';
import { writeDiagnosis } from '../../experiment/render/diagnosis';
import { createProgress } from '../progress';
import { addRuntimeOptions, loadData, output, parseInteger, parseNumber, percent, RuntimeOptions, setUpRuntime } from '../common';

interface DiagnoseCliOptions extends RuntimeOptions {
  model: string;
  epsilon: number;
  samples: number;
  seed: number;
  temperature: number;
  surrogate?: string;
  surrogateImages: number;
  surrogateEpochs: number;
  out?: string;
}

const ci = (i: { low: number; high: number }) => `[${percent(i.low, 1)}, ${percent(i.high, 1)}]`;

/** The terminal's account: the verdict first, then one line per rule and per attack. */
export function diagnosisLines(d: Diagnosis, file: string): string[] {
  const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
  const lines = [
    `${file}: ${d.settings.samples} test samples (seed ${d.settings.seed}, ${d.accuracy.correct} classified correctly), ` +
      `epsilon ${d.settings.epsilon}, evaluation T = ${d.settings.temperature}`,
    '',
    `verdict: ${d.verdict}`,
    `  by ${d.rule}`,
    `  because ${d.because}`,
    '',
    `${pad('rule', 50)} finding`,
    ...d.rules.map((r) => `${pad(`${r.id}. ${r.title}`, 50)} ${r.status}`),
    '',
    `${pad('attack', 22)} ${pad('success', 9)} ${pad('95% CI', 17)} counted  worst case`,
    ...d.steps.map((s) => {
      const r = s.atEpsilon ?? s;
      return `${pad(s.id, 22)} ${pad(percent(r.successRate, 1), 9)} ${pad(ci(r.interval), 17)} ${pad(`${r.successes}/${r.attacked}`, 8)} ${s.worstCase ? 'yes' : 'no'}`;
    }),
  ];
  const curve = d.steps.find((s) => s.byEpsilon);
  if (curve)
    lines.push(
      '',
      `epsilon curve (${curve.parameters.loss}): ${curve.byEpsilon!.map((p) => `${p.epsilon} ${percent(p.successRate, 1)}`).join(', ')}`,
    );
  const w = d.worstCase;
  lines.push(
    '',
    `worst-case robust accuracy: ${percent(w.robustAccuracy, 1)} ${ci(w.interval)} (${w.robust}/${w.samples}) over ${w.attacks.join(', ')}`,
  );
  if (w.paperFailedBatterySucceeded !== undefined)
    lines.push(`samples where the paper's Algorithm 2 (float32) failed and the battery succeeded: ${w.paperFailedBatterySucceeded}`);
  if (d.notEvaluated.length)
    lines.push(
      `not evaluated: rule ${d.notEvaluated.join(', ')}` +
        (d.settings.missingAttacks.length ? ` (not in this build's registry: ${d.settings.missingAttacks.join(', ')})` : ''),
    );
  return lines;
}

function batteryHelp(): string {
  const available = new Set(availableSteps());
  return [
    '',
    'The battery (docs/diagnose.md), on the same samples:',
    ...BATTERY.map((s) => `  ${s.id.padEnd(22)} ${s.label}${available.has(s) ? '' : ' (not in this build)'}`),
    '',
    'Rules:',
    ...Object.entries(RULES).map(([id, title]) => `  ${id}. ${title}`),
    '',
    `A rate counts as higher only when the 95% Wilson intervals do not overlap (a gap of ${100 * THRESHOLDS.minimumGap} points or more ` +
      `that overlaps is inconclusive); rule 1 fires when the interval of the all-zero share lies above ${100 * THRESHOLDS.zeroShare}%.`,
    'Verdict: "robustness is gradient masking", "no sign of masking" or "inconclusive"; the exit code is 0 for each.',
  ].join('\n');
}

export function diagnoseCommand(): Command {
  const cmd = new Command('diagnose')
    .description(
      'is the robustness real? a fixed battery of attacks on the same samples and a verdict on gradient masking, with its evidence',
    )
    .addHelpText('after', batteryHelp())
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .option('--epsilon <x>', 'radius of the L-infinity ball, in (0, 1]', parseNumber('--epsilon'), 0.3)
    .option('--samples <n>', 'test samples drawn with --seed', parseInteger('--samples', 1), 100)
    .option('--seed <n>', 'seed of the sample draw, every attack and the surrogate', parseInteger('--seed', 0), 0)
    .option('--temperature <T>', 'evaluation temperature of the cross-entropy (1: the deployed model)', parseNumber('--temperature'), 1)
    .option('--surrogate <file>', 'surrogate model for the transfer rule (default: one trained here at T = 1, seeded)')
    .option('--surrogate-images <n>', 'training images of the surrogate trained here', parseInteger('--surrogate-images', 1), 10000)
    .option('--surrogate-epochs <n>', 'epochs of the surrogate trained here', parseInteger('--surrogate-epochs', 1), 1)
    .option('--out <dir>', 'write diagnosis.json and diagnosis.html (with its figure and tables) here');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: DiagnoseCliOptions) => {
    const { backend } = setUpRuntime(o);
    // Nonsense is refused before anything is loaded.
    checkDiagnoseOptions({
      epsilon: o.epsilon,
      temperature: o.temperature,
      seed: o.seed,
      samples: o.samples,
      surrogateImages: o.surrogateImages,
      surrogateEpochs: o.surrogateEpochs,
    });
    if (o.out) await ensureWritableDir(o.out, '--out');
    const model = await Model.load(o.model, { backend });
    const surrogate = o.surrogate ? await Model.load(o.surrogate, { backend }) : undefined;
    const data = await loadData(o);
    const progress = createProgress({ quiet: o.quiet, label: 'diagnose' });
    const d = await diagnose(model, {
      epsilon: o.epsilon,
      temperature: o.temperature,
      seed: o.seed,
      samples: o.samples,
      data,
      surrogate,
      surrogateFile: o.surrogate,
      surrogateImages: o.surrogateImages,
      surrogateEpochs: o.surrogateEpochs,
      modelFile: o.model,
      onProgress: (p) => progress.update(p.done, p.total, `${p.step}: ${p.label}`),
    });
    progress.stop();
    const written = o.out ? await writeDiagnosis(o.out, d) : [];
    const page = o.out ? pathToFileURL(path.resolve(o.out, 'diagnosis.html')).href : undefined;
    output(o, o.out ? { ...d, written: written.map((f) => path.join(o.out!, f)), page } : d, [
      ...diagnosisLines(d, o.model),
      ...(page ? ['', `wrote ${path.join(o.out!, 'diagnosis.json')} and ${page}`] : []),
    ]);
  });
}
