// tempered attack: any attack of the registry on a saved model (or crafted on it and
// classified by another with --transfer-to), with a progress bar and a summary.
import { Command, InvalidArgumentError } from 'commander';
import {
  ATTACK_ALGORITHMS,
  ATTACK_OPTION_RULES,
  ATTACK_PARAMETER_NAMES,
  ATTACK_PARAMETERS,
  ATTACKS,
  AttackAlgorithm,
  AttackOptions,
  AttackParameters,
  checkAttackOptions,
  ClassIndex,
  JsmaTarget,
  runAttack,
  runTransfer,
} from '../../attack';
import type { AttackParameterName, OptionRule } from '../../attacks/registry';
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

interface AttackCliOptions extends RuntimeOptions, AttackParameters {
  model: string;
  alg: AttackAlgorithm;
  samples?: number;
  indices?: string;
  seed: number;
  transferTo?: string;
  records?: string;
}

function parseIndices(value: string): number[] {
  return value.split(',').map((s) => parseInteger('--indices', 0)(s.trim()));
}

function parseTarget(value: string): JsmaTarget {
  if (value === 'random' || value === 'all') return value;
  const t = Number(value);
  if (value.trim() === '' || !Number.isInteger(t) || t < 0 || t > 99)
    throw new InvalidArgumentError(`--target must be 'random', 'all' or a class of the model (got '${value}')`);
  return t as ClassIndex;
}

/** The command-line flag of an attack option. */
function flag(option: AttackParameterName): string {
  const dashed = '--' + option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  return attackRules(option).some((r) => r.kind === 'boolean') ? dashed.replace('--', '--no-') : dashed;
}

function attackRules(option: AttackParameterName): OptionRule[] {
  return ATTACKS.flatMap((a) => (a.options[option] ? [a.options[option]] : []));
}

/** "alg1-4: default 100; jsma: 112": which attacks take the option, and their defaults. */
function takenBy(option: AttackParameterName): string {
  const byDefault = new Map<string, string[]>();
  for (const a of ATTACKS) {
    const rule = a.options[option];
    if (!rule) continue;
    const shown = 'default' in rule ? `default ${String(rule.default)}` : 'no default';
    byDefault.set(shown, [...(byDefault.get(shown) ?? []), a.name]);
  }
  return [...byDefault].map(([d, names]) => `${names.join(', ')}: ${d}`).join('; ');
}

function parserOf(option: AttackParameterName): ((value: string) => unknown) | undefined {
  const rule = attackRules(option)[0];
  const name = flag(option);
  switch (rule.kind) {
    case 'integer':
      return parseInteger(name, 1);
    case 'number':
      return parseNumber(name);
    case 'choice':
      return parseChoice(name, rule.values);
    case 'target':
      return parseTarget;
    case 'numbers':
      return (value: string) => value.split(',').map((s) => parseNumber(name)(s.trim()));
    case 'boolean':
      return undefined;
  }
}

/** One line per attack of the registry, with the flags it takes, for --help. */
function attackHelp(): string {
  return ATTACKS.map(
    (a) => `  ${a.name.padEnd(7)} ${a.title} [${(Object.keys(a.options) as AttackParameterName[]).map(flag).join(' ')}]`,
  ).join('\n');
}

export function attackCommand(): Command {
  const cmd = new Command('attack')
    .description("attack a model on test samples with the paper's Algorithms 1-4, JSMA, JSMA-Z, PGD, FGSM or APGD")
    .addHelpText('after', `\nAttacks and the options each takes (docs/algorithms.md):\n${attackHelp()}`)
    .requiredOption('--model <file>', 'model file (.safetensors)')
    .requiredOption('--alg <name>', ATTACK_ALGORITHMS.join(', '), parseChoice('--alg', ATTACK_ALGORITHMS))
    .option('--samples <n>', 'number of test samples drawn with --seed (default 100)', parseInteger('--samples', 1))
    .option('--indices <list>', 'explicit test-set indices, comma-separated (instead of --samples)')
    .option('--seed <n>', 'seed of every random choice (samples, JSMA targets, PGD start)', parseInteger('--seed', 0), 0)
    .option('--transfer-to <file>', 'classify the images crafted on --model with this other model instead (transfer)')
    .option('--records <file>', 'also write every per-sample record (JSON, with the adversarial images)');
  // The attack options, one flag each, from the registry.
  for (const option of ATTACK_PARAMETER_NAMES) {
    const parse = parserOf(option);
    const help = `${ATTACK_PARAMETERS[option]} (${takenBy(option)})`;
    if (parse) cmd.option(`${flag(option)} <${option === 'epsilons' ? 'list' : 'value'}>`, help, parse);
    else cmd.option(flag(option), help);
  }
  addRuntimeOptions(cmd);
  return cmd.action(async (o: AttackCliOptions, command: Command) => {
    const { backend } = setUpRuntime(o);
    // Only the options given on the command line reach runAttack, which refuses those the attack does not take.
    const given = (name: string) => command.getOptionValueSource(name) === 'cli';
    const params: AttackOptions = {};
    for (const key of ATTACK_PARAMETER_NAMES) if (given(key)) (params as Record<string, unknown>)[key] = o[key];
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
      // The DLR losses are scale-invariant: no temperature to report.
      'temperature' in ATTACK_OPTION_RULES[s.algorithm] ? `T=${s.temperature}` : undefined,
      s.epsilons !== undefined ? `eps ${s.epsilons.join(', ')}` : s.epsilon !== undefined ? `eps ${s.epsilon}` : undefined,
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
        s.successes > 0
          ? `${unit} among successes: mean ${(s.meanSteps ?? s.meanQueries ?? s.meanPixels)!.toFixed(1)}, ` +
            `median ${s.medianSteps ?? s.medianQueries ?? s.medianPixels}` +
            (s.meanL2 !== undefined ? `; L2 mean ${s.meanL2.toFixed(3)}, median ${s.medianL2!.toFixed(3)}` : '')
          : 'no success',
        ...(s.byEpsilon ?? []).map(
          (p) =>
            `eps ${p.epsilon}: success ${percent(p.successRate)} [${percent(p.interval.low)}, ${percent(p.interval.high)}], ` +
            `robust accuracy ${percent(p.robustAccuracy)} [${percent(p.robustInterval.low)}, ${percent(p.robustInterval.high)}] of ${p.samples} ` +
            `(${p.attackedHere} attacked at this radius)`,
        ),
        `all-zero saliency maps: ${s.allZeroSaliency} of ${s.attacked}` +
          (s.allZeroSaliency === 0
            ? ''
            : s.algorithm === 'apgd-ce'
              ? ' (gradient masking: try --precision float64 or --alg apgd-dlr)'
              : ' (gradient masking: try --precision float64 or --loss margin / jsma-z)'),
        ...(checkpoints.length
          ? [
              `success within ${checkpoints.join(' / ')} ${unit}: ${checkpoints.map((b) => percent(s.successRateByBudget[b - 1])).join(' / ')}`,
            ]
          : []),
      ],
    );
  });
}
