// tempered reproduce: the paper's whole experiment, resumable, into one folder.
import * as path from 'path';
import { pathToFileURL } from 'url';
import { Command } from 'commander';
import { DEFAULT_ARCH, NAMED_ARCHS, resolveArch } from '../../arch';
import { ensureWritableDir } from '../../fsutil';
import { ExperimentProfile, planReproduce, ProfileName, reproduce } from '../../experiment';
import { createProgress } from '../progress';
import { addRuntimeOptions, loadData, output, parseChoice, parseInteger, percent, RuntimeOptions, setUpRuntime } from '../common';

interface ReproduceCliOptions extends RuntimeOptions {
  profile: ProfileName;
  out?: string;
  seed: number;
  epochs?: number;
  trainLimit?: number;
  samples?: number;
  alg4Samples?: number;
  budget?: number;
  pictures?: number;
  diagnosisSamples?: number;
  reuseOtherCommits?: boolean;
  serialTraining?: boolean;
  arch: string;
  plan?: boolean;
}

export function reproduceCommand(): Command {
  const cmd = new Command('reproduce')
    .description(
      'train M_std, M_std-T and M_distill, attack them with Algorithms 1-4 under three losses, and write results.json, results.md, report.html and pictures',
    )
    .option(
      '--profile <name>',
      "'quick' (~10 minutes on 2 cores: 3 epochs, 100 samples) or 'paper' (50 epochs, 1000 samples)",
      parseChoice('--profile', ['quick', 'paper'] as const),
      'quick',
    )
    .option('--out <dir>', 'output folder (default runs/reproduce-<profile>); a rerun reuses what is there')
    .option('--seed <n>', 'seed of the weights, shuffling, dropout and sample draw', parseInteger('--seed', 0), 0)
    .option('--epochs <n>', 'override the profile: epochs per model', parseInteger('--epochs', 1))
    .option('--train-limit <n>', 'override: train on the first N training images', parseInteger('--train-limit', 1))
    .option('--samples <n>', 'override: test samples attacked', parseInteger('--samples', 1))
    .option('--alg4-samples <n>', 'override: samples attacked with Algorithm 4', parseInteger('--alg4-samples', 0))
    .option('--budget <n>', 'override: pixel budget', parseInteger('--budget', 1))
    .option('--pictures <n>', 'override: samples per picture', parseInteger('--pictures', 0))
    .option(
      '--diagnosis-samples <n>',
      "override: each model's masking diagnosis (docs/diagnose.md) on the first N samples; 0: none (quick 20, paper 100)",
      parseInteger('--diagnosis-samples', 0),
    )
    .option(
      '--arch <name|file.json>',
      `the network of the three models: ${Object.keys(NAMED_ARCHS).join(', ')} or a spec file`,
      DEFAULT_ARCH,
    )
    .option(
      '--reuse-other-commits',
      'reuse attacks, gradients and pictures computed by another commit (default: recompute them; models are always reused)',
    )
    .option(
      '--serial-training',
      'train M_std and M_std-T one after the other on all threads (default on the CPU with >= 2 threads: side by side, half the threads each; same weights)',
    )
    .option('--plan', 'compute nothing: write plan.json (every piece, its inputs, file and dependencies) for run-piece, slurm and k8s');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: ReproduceCliOptions) => {
    const { backend } = setUpRuntime(o);
    const arch = resolveArch(o.arch); // a bad spec is refused before anything runs
    await ensureWritableDir(o.out ?? `runs/reproduce-${o.profile}`, '--out'); // a coded error now, not a bare errno later
    const overrides: Partial<ExperimentProfile> = {};
    if (o.epochs !== undefined) overrides.epochs = o.epochs;
    if (o.trainLimit !== undefined) overrides.trainLimit = o.trainLimit;
    if (o.samples !== undefined) overrides.samples = o.samples;
    if (o.alg4Samples !== undefined) overrides.alg4Samples = o.alg4Samples;
    if (o.budget !== undefined) overrides.budget = o.budget;
    if (o.pictures !== undefined) overrides.pictures = o.pictures;
    if (o.diagnosisSamples !== undefined) overrides.diagnosisSamples = o.diagnosisSamples;
    const progress = createProgress({ quiet: o.quiet, label: 'reproduce' });
    const data = o.data || o.split !== 'paper' || o.validation !== undefined ? await loadData(o) : undefined;
    if (o.plan) {
      const { file, plan } = await planReproduce({
        profile: o.profile,
        overrides,
        out: o.out,
        seed: o.seed,
        backend,
        data,
        dataSource: { dir: o.data ?? null, split: o.split, ...(o.validation !== undefined ? { validation: o.validation } : {}) },
        arch,
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
    const r = await reproduce({
      profile: o.profile,
      overrides,
      out: o.out,
      seed: o.seed,
      backend,
      data,
      arch,
      reuseOtherCommits: !!o.reuseOtherCommits,
      parallelTraining: !o.serialTraining,
      onEvent: (e) => {
        if (e.done !== undefined && e.total !== undefined) progress.update(e.done, e.total, e.message);
        else progress.log(`[${e.stage}] ${e.message}`);
      },
    });
    progress.stop();
    const out = path.resolve(o.out ?? `runs/reproduce-${o.profile}`);
    output(o, r, [
      `wrote ${out}/results.md, ${out}/results.json, ${out}/report.html and ${out}/pictures/`,
      pathToFileURL(path.join(out, 'report.html')).href,
      ...r.models.map((m) => `${m.name}: test accuracy ${percent(m.testAccuracy, 2)} (paper ${percent(m.paperAccuracy, 2)})`),
      ...r.attacks
        .filter((a) => a.algorithm === 'alg2')
        .map(
          (a) =>
            `alg2 ${a.setting.padEnd(6)} ${r.models.find((m) => m.id === a.model)!.name.padEnd(9)} ${percent(a.successRate)} of ${a.attacked}` +
            (a.allZeroSaliency ? ` (${a.allZeroSaliency} all-zero saliency)` : ''),
        ),
    ]);
  });
}
