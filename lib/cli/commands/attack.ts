// tempered attack: any attack of the registry on a saved model (or crafted on it and
// classified by another with --transfer-to), with a progress bar and a summary.
import { Command, InvalidArgumentError } from 'commander';
import {
  ATTACK_ALGORITHMS,
  ATTACK_LOSSES,
  ATTACKS,
  AttackAlgorithm,
  AttackOptions,
  checkAttackOptions,
  JsmaTarget,
  LOSS_PRECISIONS,
  runAttack,
  runTransfer,
} from '../../attack';
import { describeBackend } from '../../backends';
import { writeJsonAtomic } from '../../fsutil';
import { Model } from '../../model';
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

interface AttackCliOptions extends RuntimeOptions {
  model: string;
  alg: AttackAlgorithm;
  samples?: number;
  indices?: string;
  seed: number;
  budget?: number;
  temperature?: number;
  loss?: 'xent' | 'margin';
  precision?: 'float32' | 'float64';
  epsilon?: number;
  steps?: number;
  stepSize?: number;
  randomStart?: boolean;
  target?: JsmaTarget;
  transferTo?: string;
  records?: string;
}

function parseIndices(value: string): number[] {
  return value.split(',').map((s) => parseInteger('--indices', 0)(s.trim()));
}

function parseTarget(value: string): JsmaTarget {
  if (value === 'random' || value === 'all') return value;
  const t = Number(value);
  if (value.trim() === '' || !Number.isInteger(t) || t < 0 || t > 9)
    throw new InvalidArgumentError(`--target must be 'random', 'all' or a class 0-9 (got '${value}')`);
  return t;
}

/** The command-line flag of an attack option. */
function flag(option: string): string {
  return option === 'randomStart' ? '--no-random-start' : '--' + option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** One line per attack of the registry, with the flags it takes, for --help. */
function attackHelp(): string {
  return ATTACKS.map((a) => `  ${a.name.padEnd(7)} ${a.title} [${Object.keys(a.options).map(flag).join(' ')}]`).join('\n');
}

export function attackCommand(): Command {
  const cmd = new Command('attack')
    .description("attack a model on test samples with the paper's Algorithms 1-4, JSMA, JSMA-Z, PGD or FGSM")
    .addHelpText('after', `\nAttacks and the options each takes (docs/algorithms.md):\n${attackHelp()}`)
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .requiredOption('--alg <name>', ATTACK_ALGORITHMS.join(', '), parseChoice('--alg', ATTACK_ALGORITHMS))
    .option('--samples <n>', 'number of test samples drawn with --seed (default 100)', parseInteger('--samples', 1))
    .option('--indices <list>', 'explicit test-set indices, comma-separated (instead of --samples)')
    .option('--seed <n>', 'seed of every random choice (samples, JSMA targets, PGD start)', parseInteger('--seed', 0), 0)
    .option('--budget <n>', 'most pixels changed per sample (alg1-4: default 100; jsma: 112)', parseInteger('--budget', 1))
    .option(
      '--temperature <T>',
      'evaluation temperature of the cross-entropy, or of the softmax of jsma (default 1)',
      parseNumber('--temperature'),
    )
    .option('--loss <name>', "loss followed by alg1-4, pgd, fgsm: 'xent' (default) or 'margin'", parseChoice('--loss', ATTACK_LOSSES))
    .option('--precision <p>', "precision of the loss head: 'float32' (default) or 'float64'", parseChoice('--precision', LOSS_PRECISIONS))
    .option('--epsilon <e>', 'pgd, fgsm: radius of the L-infinity ball, in (0, 1] (default 0.3)', parseNumber('--epsilon'))
    .option('--steps <n>', 'pgd: steps (default 40)', parseInteger('--steps'))
    .option('--step-size <s>', 'pgd: size of each step (default 0.01)', parseNumber('--step-size'))
    .option('--no-random-start', 'pgd: start from the image itself')
    .option('--target <t>', "jsma, jsma-z: 'random' (default: one seeded class other than the label), a class 0-9, or 'all'", parseTarget)
    .option('--transfer-to <file>', 'classify the images crafted on --model with this other model instead (transfer)')
    .option('--records <file>', 'also write every per-sample record (JSON, with the adversarial images)');
  addRuntimeOptions(cmd);
  return cmd.action(async (o: AttackCliOptions, command: Command) => {
    const { backend } = setUpRuntime(o);
    // Only the options given on the command line reach runAttack, which refuses those the attack does not take.
    const given = (name: string) => command.getOptionValueSource(name) === 'cli';
    const params: AttackOptions = {};
    for (const key of ['budget', 'temperature', 'loss', 'precision', 'epsilon', 'steps', 'stepSize', 'randomStart', 'target'] as const)
      if (given(key)) (params as Record<string, unknown>)[key] = o[key];
    checkAttackOptions(o.alg, params); // before loading anything
    const model = await Model.load(o.model, { backend });
    const other = o.transferTo ? await Model.load(o.transferTo, { backend }) : undefined;
    const data = await loadData(o);
    const progress = createProgress({ quiet: o.quiet, label: o.alg });
    const options: AttackOptions = {
      ...params,
      data,
      samples: o.indices !== undefined ? parseIndices(o.indices) : (o.samples ?? 100),
      seed: o.seed,
      onProgress: (done, total) => progress.update(done, total, `${done}/${total} samples`),
    };
    if (other) {
      const t = await runTransfer(model, other, o.alg, options);
      progress.stop();
      const s = t.summary;
      if (o.records) await writeJsonAtomic(o.records, { source: o.model, target: o.transferTo, summary: s, records: t.records });
      output(
        o,
        {
          source: o.model,
          target: o.transferTo,
          dataFingerprint: data.fingerprint,
          seed: o.seed,
          ...describeBackend(backend),
          summary: s,
          records: t.records,
        },
        [
          `${o.alg} crafted on ${o.model}, classified by ${o.transferTo}`,
          `on the source: success ${percent(s.source.successRate)} of ${s.source.attacked} attacked`,
          `transferred: ${percent(s.successRate)} [95% CI ${percent(s.interval.low)}, ${percent(s.interval.high)}] of ${s.counted} counted ` +
            `(crafted and classified correctly by the target to begin with; ${s.crafted - s.counted} of ${s.crafted} crafted were not)`,
          `among the counted where the source attack succeeded: ${s.successesWhereSourceSucceeded} of ${s.sourceSuccesses} transfer`,
        ],
      );
      return;
    }
    const r = await runAttack(model, o.alg, options);
    progress.stop();
    const s = r.summary;
    if (o.records)
      await writeJsonAtomic(o.records, {
        model: o.model,
        summary: s,
        records: r.records.map((x) => ({ ...x, adversarial: Array.from(x.adversarial) })),
      });
    const settings = [
      s.loss ? `${s.loss} (${s.precision})` : undefined,
      `T=${s.temperature}`,
      s.epsilon !== undefined ? `eps ${s.epsilon}` : undefined,
      s.target !== undefined ? `target ${s.target}` : undefined,
      `budget ${s.budget} ${s.budgetUnit ?? 'pixels'}`,
    ]
      .filter(Boolean)
      .join(', ');
    const unit = s.budgetUnit ?? 'pixels';
    const checkpoints = (unit === 'pixels' ? [10, 20, 50] : [1, 10, 20]).filter((b) => b <= s.budget);
    const skipped = s.samples - s.attacked;
    output(
      o,
      {
        model: o.model,
        dataFingerprint: data.fingerprint,
        seed: o.seed,
        ...describeBackend(backend),
        summary: s,
        records: r.records.map(({ adversarial: _a, saliency: _s, ...rest }) => rest),
      },
      [
        `${o.model}: ${o.alg}, ${settings}`,
        `success ${percent(s.successRate)} [95% CI ${percent(s.interval.low)}, ${percent(s.interval.high)}] of ${s.attacked} attacked ` +
          `(${skipped} of ${s.samples} not attacked: misclassified to begin with${s.targetIsLabel ? `, or ${s.targetIsLabel} whose label is the target` : ''})`,
        ...(s.anyTarget ? [`some target succeeded on ${percent(s.anyTarget.successRate)} of ${s.anyTarget.samples} samples`] : []),
        s.successes > 0 ? `${unit} among successes: mean ${s.meanPixels!.toFixed(1)}, median ${s.medianPixels}` : 'no success',
        `all-zero saliency maps: ${s.allZeroSaliency} of ${s.attacked}` +
          (s.allZeroSaliency > 0 ? ' (gradient masking: try --precision float64 or --loss margin / jsma-z)' : ''),
        ...(checkpoints.length
          ? [
              `success within ${checkpoints.join(' / ')} ${unit}: ${checkpoints.map((b) => percent(s.successRateByBudget[b - 1])).join(' / ')}`,
            ]
          : []),
      ],
    );
  });
}
