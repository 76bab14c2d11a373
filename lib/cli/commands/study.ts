// tempered study: robustness against the training temperature, resumable, into one folder.
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_ARCH, NAMED_ARCHS, resolveArch } from '../../arch';
import { planStudy, study, STUDY_ATTACK_IDS, StudyProfile, StudyProfileName } from '../../experiment';
import { createProgress } from '../progress';
import {
  addRuntimeOptions,
  loadData,
  output,
  parseChoice,
  parseInteger,
  parseNumber,
  percent,
  RuntimeOptions,
  setUpRuntime,
} from '../common';

interface StudyCliOptions extends RuntimeOptions {
  profile: StudyProfileName;
  out?: string;
  arch: string;
  temperatures?: number[];
  attacks?: string[];
  samples?: number;
  epochs?: number;
  seeds?: number;
  trainLimit?: number;
  nearChance?: number;
  diagnosisSamples?: number;
  reuseOtherCommits?: boolean;
  plan?: boolean;
}

/** A comma-separated list of numbers; the values themselves are checked by the study (coded errors). */
function parseNumberList(name: string) {
  return (value: string): number[] =>
    value.split(',').map((s) => {
      const x = Number(s);
      if (s.trim() === '' || Number.isNaN(x))
        throw new InvalidArgumentError(`${name} must be a comma-separated list of numbers (got '${value}')`);
      return x;
    });
}

export function studyCommand(): Command {
  const cmd = new Command('study')
    .description(
      'robustness against the training temperature: train M_std-T and M_distill(T) at each T, attack them all, and write results.json, results.md and report.html',
    )
    .option(
      '--profile <name>',
      "'quick' (3 epochs, 100 samples, 1 seed) or 'paper' (50 epochs, 1000 samples, 3 seeds)",
      parseChoice('--profile', ['quick', 'paper'] as const),
      'quick',
    )
    .option('--out <dir>', 'output folder (default runs/study-<profile>); a rerun reuses what is there')
    .option('--arch <name|file.json>', `the network of every model: ${Object.keys(NAMED_ARCHS).join(', ')} or a spec file`, DEFAULT_ARCH)
    .option('--temperatures <list>', 'override: training temperatures, e.g. 1,20,100', parseNumberList('--temperatures'))
    .option('--attacks <list>', `override: attacks, comma-separated, of ${STUDY_ATTACK_IDS.join(', ')}`, (v: string) =>
      v.split(',').map((s) => s.trim()),
    )
    .option('--samples <n>', 'override: test samples attacked', parseInteger('--samples'))
    .option('--epochs <n>', 'override: epochs per model', parseInteger('--epochs'))
    .option('--seeds <n>', 'override: train with seeds 0..n-1', parseInteger('--seeds'))
    .option('--train-limit <n>', 'override: train on the first N training images', parseInteger('--train-limit'))
    .option(
      '--near-chance <fraction>',
      'override: a model below this test accuracy (at T = 1) is near chance and never attacked (default 0.5)',
      parseNumber('--near-chance'),
    )
    .option(
      '--diagnosis-samples <n>',
      "override: each model's masking diagnosis (docs/diagnose.md) on the first N samples; 0: none (quick 20, paper 100)",
      parseInteger('--diagnosis-samples'),
    )
    .option('--reuse-other-commits', 'reuse attacks and gradients computed by another commit (models are always reused)')
    .option('--plan', 'compute nothing: write plan.json (every piece, its inputs, file and dependencies) for run-piece, slurm and k8s');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: StudyCliOptions) => {
    const { backend } = setUpRuntime(o);
    const arch = resolveArch(o.arch); // a bad spec is refused before anything runs
    const overrides: Partial<StudyProfile> = {
      temperatures: o.temperatures,
      attacks: o.attacks,
      samples: o.samples,
      epochs: o.epochs,
      seeds: o.seeds,
      trainLimit: o.trainLimit,
      nearChance: o.nearChance,
      diagnosisSamples: o.diagnosisSamples,
    };
    const progress = createProgress({ quiet: o.quiet, label: 'study' });
    const data = o.data || o.split !== 'paper' || o.validation !== undefined ? await loadData(o) : undefined;
    if (o.plan) {
      const { file, plan } = await planStudy({
        arch,
        profile: o.profile,
        overrides,
        out: o.out,
        backend,
        data,
        dataSource: { dir: o.data ?? null, split: o.split, ...(o.validation !== undefined ? { validation: o.validation } : {}) },
        reuseOtherCommits: !!o.reuseOtherCommits,
      });
      progress.stop();
      output(o, plan, [
        `wrote ${file}: ${plan.pieces.length} pieces in ${plan.stages.length} stages`,
        ...plan.stages.map((s) => `  ${s.name}: ${s.pieces.length} pieces${s.after.length ? `, after ${s.after.join(', ')}` : ''}`),
        `next: tempered slurm ${path.dirname(file)} --submit (or run-piece each piece, then tempered report ${path.dirname(file)})`,
      ]);
      return;
    }
    const r = await study({
      arch,
      profile: o.profile,
      overrides,
      out: o.out,
      backend,
      data,
      reuseOtherCommits: !!o.reuseOtherCommits,
      onEvent: (e) => {
        if (e.done !== undefined && e.total !== undefined) progress.update(e.done, e.total, e.message);
        else progress.log(`[${e.stage}] ${e.message}`);
      },
    });
    progress.stop();
    const out = path.resolve(o.out ?? `runs/study-${o.profile}`);
    output(o, r, [
      `wrote ${out}/results.md, ${out}/results.json and ${out}/report.html`,
      pathToFileURL(path.join(out, 'report.html')).href,
      ...r.models.map(
        (m) =>
          `${m.name} seed ${m.seed}: ${m.testAccuracy === undefined ? 'not trained' : `test accuracy ${percent(m.testAccuracy, 2)}`}${m.status === 'ok' ? '' : ` (${m.status}: not attacked)`}`,
      ),
    ]);
  });
}
