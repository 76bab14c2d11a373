// runAttack: every attack of the registry (lib/attacks/registry.ts) on a model, batched
// across samples in the native engine, with per-sample records and the summaries a
// robustness report needs. Definitions and choices: docs/algorithms.md.
import { types } from 'util';
import { TemperedError, checkNumber, rangeError, typeError } from './errors';
import { loadMnist, MnistData, MnistSplit } from './mnist';
import { Model, checkSplitFits } from './model';
import { Random, sampleWithoutReplacement } from './rng';
import { median, mean, wilsonInterval } from './stats';
import {
  ATTACK_ALGORITHMS,
  AttackAlgorithm,
  AttackBatch,
  AttackDescriptor,
  AttackLoss,
  AttackParameterName,
  AttackParameters,
  AttackParametersOf,
  ATTACK_PARAMETER_NAMES,
  BudgetUnit,
  ClassIndex,
  LossPrecision,
  NativeBatchResult,
  OptionRule,
  PAPER_ALGORITHMS,
  ResolvedParameters,
  attackDescriptor,
} from './attacks/registry';

type PaperAlgorithm = (typeof PAPER_ALGORITHMS)[number];

export {
  ATTACK_ALGORITHMS,
  ATTACK_LOSSES,
  ATTACK_OPTION_RULES,
  ATTACK_PARAMETERS,
  ATTACK_PARAMETER_NAMES,
  ATTACKS,
  LOSS_PRECISIONS,
  PAPER_ALGORITHMS,
  attackDescriptor,
} from './attacks/registry';
export type {
  AttackAlgorithm,
  AttackDescriptor,
  AttackLoss,
  AttackParameters,
  AttackParametersOf,
  BudgetUnit,
  ClassIndex,
  JsmaTarget,
  LossPrecision,
} from './attacks/registry';

/** The options every attack takes: which samples, the seed, the data, progress. */
export interface AttackRunOptions {
  /** Test-set indices to attack, or a count drawn without replacement with `seed` (default 100). */
  samples?: number[] | number;
  /** Seed of every random choice: the sample draw, JSMA's random targets, PGD's random start (default 0). */
  seed?: number;
  /** The data whose test split is attacked (default: loadMnist()). */
  data?: MnistData;
  /** Another split to draw the samples from instead of the test set. */
  split?: MnistSplit;
  /** Samples per native call (default: the attack's; Algorithm 4: 2): progress granularity. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Algorithms 1-4 can keep each attacked sample's first saliency map in its record (for pictures). */
interface SaliencyOption {
  keepSaliency?: boolean;
}

/**
 * The options of attack A, derived from the registry: `runAttack(model, 'alg2', { epsilon: 0.3 })`
 * does not compile, as checkAttackOptions refuses it at run time.
 */
export type AttackOptionsOf<A extends AttackAlgorithm> = A extends AttackAlgorithm
  ? AttackRunOptions & AttackParametersOf<A> & (A extends PaperAlgorithm ? SaliencyOption : unknown)
  : never;

/** Any attack's options, for callers that choose the attack at run time (checked then). */
export interface AttackOptions extends AttackRunOptions, AttackParameters, SaliencyOption {}

/** Why a sample was not attacked. */
export type SkipReason = 'misclassified' | 'target-is-label';

export interface AttackRecord {
  /** Index in the split (the test set by default). */
  index: number;
  label: number;
  /** JSMA: the class the attack aims for. */
  target?: number;
  /** False when the sample was not attacked (see skipReason); it then counts in neither the numerator nor the denominator. */
  attacked: boolean;
  skipReason?: SkipReason;
  /** Algorithms 1-4, PGD, FGSM, APGD (apgd-t too): the prediction differs from the label; JSMA: the prediction is the target. */
  success: boolean;
  /**
   * Algorithms 1-4: pixels chosen (the paper's i); JSMA: pixels changed (2 per pair); PGD and FGSM: gradient
   * steps taken (0 when the random start alone succeeded); APGD: gradient steps taken over every run; Square:
   * queries used (forward passes of perturbed images, the stripes included); Carlini-Wagner L2: gradient
   * evaluations up to the best image (0: none succeeded). On success, what it took.
   */
  pixels: number;
  /** Pixels whose value actually differs from the original. */
  l0: number;
  /** PGD, FGSM, APGD, Square and Carlini-Wagner L2: max |adversarial - original| over the pixels. */
  linf?: number;
  /** Carlini-Wagner L2: ||adversarial - original||_2 of the best image (0 when no step succeeded). */
  l2?: number;
  /** PGD and FGSM with `epsilons`: the radius of this record's attack (the smallest that fooled it, else the largest). */
  epsilon?: number;
  initialPrediction: number;
  finalPrediction: number;
  /** Every candidate entry of the first saliency map (JSMA: of a and b; PGD, FGSM: of the gradient) was exactly zero (masking). */
  saliencyAllZero: boolean;
  /** Algorithms 1-4: the chosen candidates (p = position p set to 1, P + p = set to 0, P positions; every channel of the position); JSMA: the features set to 1; PGD, FGSM: empty. */
  path: number[];
  /** The image when the attack ended (the model's input size, NHWC, values in [0, 1]). */
  adversarial: Float32Array;
  /** The first saliency map (2 x positions entries, 1,568 for MNIST; Algorithms 1 and 3: dL/dx summed over channels in the first half), when kept. */
  saliency?: Float64Array;
}

/** The attack's settings (those it takes; JSMA has no loss or precision), then its outcome. */
export interface AttackSummary extends Omit<AttackParameters, 'budget' | 'temperature'> {
  algorithm: AttackAlgorithm;
  /** What `budget` counts: changed pixels, gradient steps (PGD, FGSM, Carlini-Wagner L2) or Square's queries. */
  budgetUnit?: BudgetUnit;
  budget: number;
  temperature: number;
  /** Records (samples, or sample-target pairs for JSMA with target 'all'), and how many were attacked. */
  samples: number;
  attacked: number;
  successes: number;
  successRate: number;
  /** 95% Wilson score interval of the success rate. */
  interval: { low: number; high: number };
  /** Pixel attacks: mean and median pixels changed among successes. */
  meanPixels?: number;
  medianPixels?: number;
  /** PGD and FGSM: mean and median gradient steps among successes (0: the random start alone). */
  meanSteps?: number;
  medianSteps?: number;
  /** Square: mean and median queries used among successes. */
  meanQueries?: number;
  medianQueries?: number;
  /** Carlini-Wagner L2: mean and median ||adversarial - original||_2 among successes. */
  meanL2?: number;
  medianL2?: number;
  /** PGD and FGSM with `epsilons`: success and robust accuracy at each radius, smallest first. */
  byEpsilon?: EpsilonPoint[];
  /** successRateByBudget[k - 1]: the success rate with a budget of k pixels (or steps), k = 1..budget. */
  successRateByBudget: number[];
  /** Attacked records whose first saliency map (or gradient) was all zero. */
  allZeroSaliency: number;
  /** Records skipped because the fixed target was the sample's label. */
  targetIsLabel?: number;
  /** JSMA with target 'all': samples attacked towards some target, and the share of them where some target succeeded. */
  anyTarget?: { samples: number; successes: number; successRate: number; interval: { low: number; high: number } };
  seconds: number;
}

export interface AttackResult {
  summary: AttackSummary;
  records: AttackRecord[];
}

/** The attack, its options resolved with their defaults, and the samples. */
export interface ResolvedAttackOptions extends ResolvedParameters {
  algorithm: AttackAlgorithm;
  seed: number;
  indices: number[];
}

/** Stream of JSMA's random targets in the project's RNG (the sample draw uses 7). */
const TARGET_STREAM = 0x7a000000;

/** The seeded random target of the sample at `index` with `label`: uniform over the other classes. */
export function randomTarget(label: number, index: number, seed: number, classes = 10): number {
  return (label + 1 + new Random(seed, TARGET_STREAM + index).int(classes - 1)) % classes;
}

function checkOption(name: AttackParameterName, value: unknown, rule: OptionRule): AttackParameters[AttackParameterName] {
  switch (rule.kind) {
    case 'integer':
      return checkNumber(value, name, { min: rule.min, max: rule.max, integer: true });
    case 'number':
      return checkNumber(value, name, { min: rule.min, max: rule.max, minExclusive: rule.minExclusive });
    case 'choice':
      if (typeof value !== 'string' || !rule.values.includes(value))
        throw rangeError(`${name} must be ${rule.values.map((v) => `'${v}'`).join(' or ')} (got '${String(value)}')`);
      return value as AttackLoss | LossPrecision;
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(`${name} must be a boolean`);
      return value;
    case 'target':
      if (value === 'random' || value === 'all') return value;
      // 0..99: the most classes a spec may have; runAttack holds it to the model's classes.
      if (typeof value === 'number') return checkNumber(value, 'target', { min: 0, max: 99, integer: true }) as ClassIndex;
      throw rangeError(`target must be 'random', 'all' or a class (got '${String(value)}')`);
    case 'numbers': {
      if (!Array.isArray(value)) throw typeError(`${name} must be an array of numbers`);
      if (value.length === 0) throw rangeError(`${name} must not be empty`, 'TEMPERED_INVALID_LENGTH');
      const list = value.map((v, k) => checkNumber(v, `${name}[${k}]`, { min: rule.min, max: rule.max, minExclusive: rule.minExclusive }));
      if (new Set(list).size !== list.length) throw rangeError(`${name} holds a repeated value`);
      return [...list].sort((a, b) => a - b);
    }
  }
}

/**
 * The attack and its own options, checked and completed with the registry's defaults;
 * throws a coded error on nonsense (an unknown attack, a value out of its limits, an
 * option the attack does not take). Needs no data: callers refuse bad input before any work.
 */
export function checkAttackOptions(alg: unknown, opts: AttackParameters = {}): ResolvedParameters & { algorithm: AttackAlgorithm } {
  if (typeof alg !== 'string') throw typeError(`algorithm must be one of ${ATTACK_ALGORITHMS.join(', ')}`);
  const d = attackDescriptor(alg);
  if (!d) throw rangeError(`unknown algorithm '${alg}' (expected one of ${ATTACK_ALGORITHMS.join(', ')})`);
  const resolved = {} as Record<string, unknown>;
  if (opts.epsilon !== undefined && opts.epsilons !== undefined) throw rangeError('give epsilon or epsilons, not both');
  for (const name of ATTACK_PARAMETER_NAMES) {
    const rule = d.options[name];
    const given = opts[name];
    if (!rule) {
      if (given !== undefined)
        throw rangeError(`option '${name}' does not apply to ${d.name} (it takes ${Object.keys(d.options).join(', ')})`);
      resolved[name] = undefined;
    } else {
      resolved[name] =
        'default' in rule
          ? checkOption(name, given ?? rule.default, rule)
          : given === undefined
            ? undefined
            : checkOption(name, given, rule);
    }
  }
  return { ...(resolved as ResolvedParameters), algorithm: d.name };
}

/** Validates the options and draws the samples; throws a coded error on nonsense, before any work. */
export function resolveAttackOptions(alg: unknown, split: MnistSplit, opts: AttackOptions = {}): ResolvedAttackOptions {
  const resolved = checkAttackOptions(alg, opts);
  const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
  let indices: number[];
  const samples = opts.samples ?? 100;
  if (typeof samples === 'number') {
    checkNumber(samples, 'samples', { min: 1, max: split.count, integer: true });
    indices = sampleWithoutReplacement(split.count, samples, seed, 7);
  } else if (Array.isArray(samples)) {
    if (samples.length === 0) throw rangeError('samples must not be empty', 'TEMPERED_INVALID_LENGTH');
    indices = samples.map((i, k) => checkNumber(i, `samples[${k}]`, { min: 0, max: split.count - 1, integer: true }));
    if (new Set(indices).size !== indices.length) throw rangeError('samples holds a repeated index');
  } else {
    throw typeError('samples must be a count or an array of indices');
  }
  return { ...resolved, seed, indices };
}

/** The options that depend on the model's size: the budget within its pixels, a target among its classes. */
function checkModelFits(d: AttackDescriptor, opts: AttackOptions, sizes: { inputSize: number; positions: number; classes: number }): void {
  const max = d.sized?.maxBudget(sizes);
  if (max !== undefined && opts.budget !== undefined && opts.budget > max)
    throw rangeError(`budget must be at most ${max} for this model (got ${opts.budget})`);
  if (typeof opts.target === 'number' && opts.target >= sizes.classes)
    throw rangeError(`target must be a class 0-${sizes.classes - 1} of this model (got ${opts.target})`);
}

let defaultData: Promise<MnistData> | undefined;

/** One row of work: a sample, and its JSMA target (-1 for untargeted attacks). */
interface Row {
  index: number;
  target: number;
}

function rowsOf(o: ResolvedAttackOptions, split: MnistSplit, classes: number): Row[] {
  const rows: Row[] = [];
  for (const index of o.indices) {
    const label = split.labels[index];
    if (o.target === undefined) rows.push({ index, target: -1 });
    else if (o.target === 'random') rows.push({ index, target: randomTarget(label, index, o.seed, classes) });
    else if (o.target === 'all') {
      for (let t = 0; t < classes; t++) if (t !== label) rows.push({ index, target: t });
    } else rows.push({ index, target: o.target });
  }
  return rows;
}

/**
 * Attacks `model` with `alg` (any name of ATTACK_ALGORITHMS) on test samples (opts.samples:
 * indices, or a count drawn with opts.seed). Only the samples the model classifies correctly
 * are attacked (and, for JSMA with a fixed target, whose label is not the target); the
 * others are recorded with attacked = false and a skipReason, and count in neither the
 * numerator nor the denominator of the success rate.
 */
export async function runAttack<A extends AttackAlgorithm>(model: Model, alg: A, options?: AttackOptionsOf<A>): Promise<AttackResult> {
  const opts = (options ?? {}) as AttackOptions;
  if (!(model instanceof Model)) throw typeError('model must be a Model');
  if (opts.split !== undefined && (typeof opts.split !== 'object' || !types.isFloat32Array(opts.split.images)))
    throw typeError('split must be an MNIST split (e.g. data.test)');
  checkAttackOptions(alg, opts); // nonsense is refused before the default data set is even loaded
  const d = attackDescriptor(alg as string) as AttackDescriptor;
  const sizes = { inputSize: model.inputSize, positions: model.positions, classes: model.classes };
  const sized = { ...opts, budget: opts.budget ?? d.sized?.defaultBudget?.(sizes) } as AttackOptions;
  checkModelFits(d, sized, sizes);
  const split = opts.split ?? opts.data?.test ?? (await (defaultData ??= loadMnist())).test;
  const o = resolveAttackOptions(alg, split, sized);
  const chunk = checkNumber(opts.chunk ?? d.chunk, 'chunk', { min: 1, integer: true });
  if (opts.keepSaliency && !d.saliencyMaps) throw rangeError(`keepSaliency does not apply to ${d.name}`);
  checkSplitFits(split, model);
  const rows = rowsOf(o, split, model.classes);
  const budget = d.budgetOf(o);
  const started = Date.now();
  const context = { ...o, budget, temperature: o.temperature ?? 1, budgetUnit: d.budgetUnit };
  const run = (part: Row[], params: ResolvedParameters, onProgress: (done: number) => void) =>
    attackRows(model, d, split, part, params, o.seed, chunk, !!opts.keepSaliency, onProgress);
  if (!o.epsilons) {
    const records = await run(rows, o, (done) => opts.onProgress?.(done, rows.length));
    return { summary: summarize(context, records, (Date.now() - started) / 1000), records };
  }
  // Several radii, smallest first. An image found within a smaller ball lies in every larger
  // one, so a sample fooled at one radius counts as fooled at the larger ones and is not
  // attacked again; the others are attacked afresh (from a new random start) at each radius.
  const byRow = new Map<Row, AttackRecord>();
  let pending = rows;
  const byEpsilon: EpsilonPoint[] = [];
  for (const [pass, epsilon] of o.epsilons.entries()) {
    const params = { ...o, epsilon };
    const fooledBefore = rows.length - pending.length;
    const records = await run(pending, params, (done) =>
      opts.onProgress?.(pass * rows.length + fooledBefore + done, o.epsilons!.length * rows.length),
    );
    pending.forEach((row, k) => byRow.set(row, records[k]));
    pending = pending.filter((row) => byRow.get(row)!.attacked && !byRow.get(row)!.success);
    byEpsilon.push(epsilonPoint(epsilon, [...byRow.values()], records.filter((r) => r.attacked).length));
  }
  const records = rows.map((row) => byRow.get(row)!);
  const largest = o.epsilons[o.epsilons.length - 1];
  const summary = summarize({ ...context, epsilon: largest }, records, (Date.now() - started) / 1000);
  return { summary: { ...summary, byEpsilon }, records };
}

/** Success and robust accuracy at one radius of an `epsilons` run. */
export interface EpsilonPoint {
  epsilon: number;
  /** Samples, those attacked (classified correctly to begin with), and those fooled within this radius. */
  samples: number;
  attacked: number;
  successes: number;
  successRate: number;
  /** 95% Wilson interval of the success rate among the attacked. */
  interval: { low: number; high: number };
  /** Samples still classified correctly within this radius, over all samples (foolbox's robust accuracy). */
  robustAccuracy: number;
  robustInterval: { low: number; high: number };
  /** Samples attacked at this radius (the others were fooled at a smaller one, or misclassified to begin with). */
  attackedHere: number;
}

function epsilonPoint(epsilon: number, records: AttackRecord[], attackedHere: number): EpsilonPoint {
  const attacked = records.filter((r) => r.attacked).length;
  const successes = records.filter((r) => r.attacked && r.success).length;
  const robust = attacked - successes;
  return {
    epsilon,
    samples: records.length,
    attacked,
    successes,
    successRate: attacked ? successes / attacked : 0,
    interval: wilsonInterval(successes, attacked),
    robustAccuracy: records.length ? robust / records.length : 0,
    robustInterval: wilsonInterval(robust, records.length),
    attackedHere,
  };
}

/** Runs the attack on `rows` in native batches of `chunk`, one record per row. */
async function attackRows(
  model: Model,
  d: AttackDescriptor,
  split: MnistSplit,
  rows: Row[],
  params: ResolvedParameters,
  seed: number,
  chunk: number,
  keepSaliency: boolean,
  onProgress: (done: number) => void,
): Promise<AttackRecord[]> {
  const size = model.inputSize;
  const candidates = 2 * model.positions;
  const pathLength = (r: NativeBatchResult, n: number) => (n > 0 ? r.path.length / n : 0);
  const records: AttackRecord[] = [];
  for (let at = 0; at < rows.length; at += chunk) {
    const part = rows.slice(at, at + chunk);
    const batch: AttackBatch = {
      images: new Float32Array(part.length * size),
      labels: new Int32Array(part.length),
      targets: new Int32Array(part.length),
      keys: new Uint32Array(part.length),
    };
    part.forEach((row, k) => {
      batch.images.set(split.images.subarray(row.index * size, (row.index + 1) * size), k * size);
      batch.labels[k] = split.labels[row.index];
      batch.targets[k] = Math.max(row.target, 0);
      batch.keys[k] = row.index;
    });
    let r: NativeBatchResult;
    try {
      r = await d.run(model.nativeModel, batch, params, seed, keepSaliency);
    } catch (e) {
      throw e instanceof Error ? e : new TemperedError('TEMPERED_IO', String(e));
    }
    const width = pathLength(r, part.length);
    part.forEach((row, k) => {
      const path: number[] = [];
      for (let s = 0; s < width; s++) {
        const c = r.path[k * width + s];
        if (c < 0) break;
        path.push(c);
      }
      const label = batch.labels[k];
      const attacked = r.attacked[k] === 1;
      records.push({
        index: row.index,
        label,
        ...(row.target >= 0 ? { target: row.target } : {}),
        attacked,
        ...(attacked ? {} : { skipReason: row.target === label ? 'target-is-label' : 'misclassified' }),
        success: r.success[k] === 1,
        pixels: r.iterations[k],
        l0: r.l0[k],
        ...(r.linf ? { linf: r.linf[k] } : {}),
        ...(r.l2 ? { l2: r.l2[k] } : {}),
        initialPrediction: r.initialPrediction[k],
        finalPrediction: r.finalPrediction[k],
        saliencyAllZero: r.saliencyZero[k] === 1,
        path,
        adversarial: r.adversarial.slice(k * size, (k + 1) * size),
        saliency: r.saliency ? r.saliency.slice(k * candidates, (k + 1) * candidates) : undefined,
        ...(params.epsilons ? { epsilon: params.epsilon } : {}),
      });
    });
    onProgress(Math.min(rows.length, at + chunk));
  }
  return records;
}

/** What a summary reports besides the records: the attack and its settings. */
export type SummaryContext = Pick<AttackSummary, 'algorithm' | 'budget' | 'temperature'> &
  Partial<Omit<ResolvedAttackOptions, 'algorithm' | 'budget' | 'temperature' | 'indices' | 'seed'>> & { budgetUnit?: BudgetUnit };

/**
 * A summary as this version writes it, from one of any version: before steps were reported
 * as such, PGD's and FGSM's step counts sat in meanPixels / medianPixels.
 */
export function readSummary<S extends Partial<AttackSummary>>(s: S): S {
  if (s.budgetUnit !== 'steps' || s.meanSteps !== undefined || (s.meanPixels === undefined && s.medianPixels === undefined)) return s;
  const { meanPixels, medianPixels, ...rest } = s;
  return { ...rest, meanSteps: meanPixels, medianSteps: medianPixels } as S;
}

export function summarize(o: SummaryContext, records: AttackRecord[], seconds: number): AttackSummary {
  const attacked = records.filter((r) => r.attacked);
  const wins = attacked.filter((r) => r.success);
  const pixels = wins.map((r) => r.pixels);
  const byBudget: number[] = [];
  const needed = new Array<number>(o.budget + 1).fill(0);
  for (const p of pixels) needed[Math.min(p, o.budget)]++;
  let cumulative = needed[0]; // PGD: the random start alone
  for (let k = 1; k <= o.budget; k++) {
    cumulative += needed[k];
    byBudget.push(attacked.length ? cumulative / attacked.length : 0);
  }
  const settings: Partial<AttackSummary> = {};
  // Every option the attack took, but budget and temperature, which come first.
  for (const key of ATTACK_PARAMETER_NAMES)
    if (key !== 'budget' && key !== 'temperature' && o[key] !== undefined) (settings as Record<string, unknown>)[key] = o[key];
  const summary: AttackSummary = {
    algorithm: o.algorithm,
    ...(o.budgetUnit ? { budgetUnit: o.budgetUnit } : {}),
    budget: o.budget,
    temperature: o.temperature,
    ...settings,
    samples: records.length,
    attacked: attacked.length,
    successes: wins.length,
    successRate: attacked.length ? wins.length / attacked.length : 0,
    interval: wilsonInterval(wins.length, attacked.length),
    ...(o.budgetUnit === 'steps'
      ? { meanSteps: mean(pixels), medianSteps: median(pixels) }
      : o.budgetUnit === 'queries'
        ? { meanQueries: mean(pixels), medianQueries: median(pixels) }
        : { meanPixels: mean(pixels), medianPixels: median(pixels) }),
    successRateByBudget: byBudget,
    ...(wins.some((r) => r.l2 !== undefined) ? { meanL2: mean(wins.map((r) => r.l2!)), medianL2: median(wins.map((r) => r.l2!)) } : {}),
    allZeroSaliency: attacked.filter((r) => r.saliencyAllZero).length,
    seconds,
  };
  const targetIsLabel = records.filter((r) => r.skipReason === 'target-is-label').length;
  if (targetIsLabel > 0) summary.targetIsLabel = targetIsLabel;
  if (o.target === 'all') {
    const bySample = new Map<number, boolean>();
    for (const r of attacked) bySample.set(r.index, (bySample.get(r.index) ?? false) || r.success);
    const successes = [...bySample.values()].filter(Boolean).length;
    summary.anyTarget = {
      samples: bySample.size,
      successes,
      successRate: bySample.size ? successes / bySample.size : 0,
      interval: wilsonInterval(successes, bySample.size),
    };
  }
  return summary;
}

export { runTransfer } from './attacks/transfer';
export type { TransferRecord, TransferResult, TransferSummary } from './attacks/transfer';
