// tempered attack: Algorithms 1-4 on a saved model, with a progress bar and a summary.
import { Command } from 'commander';
import { ATTACK_ALGORITHMS, AttackAlgorithm, runAttack } from '../../attack';
import { describeBackend } from '../../backends';
import { writeJsonAtomic } from '../../fsutil';
import { Model } from '../../model';
import { createProgress } from '../progress';
import { addRuntimeOptions, loadData, output, parseChoice, parseInteger, parseNumber, percent, RuntimeOptions, setUpRuntime } from '../common';

interface AttackCliOptions extends RuntimeOptions {
  model: string;
  alg: AttackAlgorithm;
  samples?: number;
  indices?: string;
  seed: number;
  budget: number;
  temperature: number;
  loss: 'xent' | 'margin';
  precision: 'float32' | 'float64';
  records?: string;
}

function parseIndices(value: string): number[] {
  return value.split(',').map((s) => parseInteger('--indices', 0)(s.trim()));
}

export function attackCommand(): Command {
  const cmd = new Command('attack')
    .description('attack a model with the paper\'s pixel-saliency Algorithms 1-4 on test samples')
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .requiredOption('--alg <name>', 'alg1, alg2, alg3 or alg4', parseChoice('--alg', ATTACK_ALGORITHMS))
    .option('--samples <n>', 'number of test samples drawn with --seed (default 100)', parseInteger('--samples', 1))
    .option('--indices <list>', 'explicit test-set indices, comma-separated (instead of --samples)')
    .option('--seed <n>', 'seed of the sample draw', parseInteger('--seed', 0), 0)
    .option('--budget <n>', 'most pixels changed per sample', parseInteger('--budget', 1), 100)
    .option('--temperature <T>', 'evaluation temperature of the cross-entropy', parseNumber('--temperature'), 1)
    .option('--loss <name>', "loss the saliency follows: 'xent' (the paper) or 'margin'", parseChoice('--loss', ['xent', 'margin'] as const), 'xent')
    .option('--precision <p>', "precision of the loss head: 'float32' (the paper) or 'float64'", parseChoice('--precision', ['float32', 'float64'] as const), 'float32')
    .option('--records <file>', 'also write every per-sample record (JSON, with the adversarial images)');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: AttackCliOptions) => {
    const { backend } = setUpRuntime(o);
    const model = await Model.load(o.model, { backend });
    const data = await loadData(o);
    const progress = createProgress({ quiet: o.quiet, label: o.alg });
    const r = await runAttack(model, o.alg, {
      data,
      samples: o.indices !== undefined ? parseIndices(o.indices) : (o.samples ?? 100),
      seed: o.seed,
      budget: o.budget,
      temperature: o.temperature,
      loss: o.loss,
      precision: o.precision,
      onProgress: (done, total) => progress.update(done, total, `${done}/${total} samples`),
    });
    progress.stop();
    const s = r.summary;
    if (o.records)
      await writeJsonAtomic(o.records, { model: o.model, summary: s, records: r.records.map((x) => ({ ...x, adversarial: Array.from(x.adversarial) })) });
    output(
      o,
      { model: o.model, dataFingerprint: data.fingerprint, seed: o.seed, ...describeBackend(backend), summary: s, records: r.records.map(({ adversarial: _a, saliency: _s, ...rest }) => rest) },
      [
        `${o.model}: ${o.alg}, ${o.loss} (${o.precision}) at T=${o.temperature}, budget ${o.budget}`,
        `success ${percent(s.successRate)} [95% CI ${percent(s.interval.low)}, ${percent(s.interval.high)}] of ${s.attacked} attacked ` +
          `(${s.samples - s.attacked} of ${s.samples} misclassified to begin with, not attacked)`,
        s.successes > 0 ? `pixels among successes: mean ${s.meanPixels!.toFixed(1)}, median ${s.medianPixels}` : 'no success',
        `all-zero saliency maps: ${s.allZeroSaliency} of ${s.attacked}` + (s.allZeroSaliency > 0 ? ' (gradient masking: try --precision float64 or --loss margin)' : ''),
        `success within 10 / 20 / 50 pixels: ${[10, 20, 50].filter((b) => b <= s.budget).map((b) => percent(s.successRateByBudget[b - 1])).join(' / ')}`,
      ],
    );
  });
}
