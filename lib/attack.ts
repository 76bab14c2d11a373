// runAttack: the paper's Algorithms 1-4 on a model, batched across samples in the native
// engine, with per-sample records and the summaries a robustness report needs.
import { types } from 'util';
import type { NativeAttackResult } from '../binding';
import { TemperedError, checkNumber, rangeError, typeError } from './errors';
import { loadMnist, MnistData, MnistSplit } from './mnist';
import { Model } from './model';
import { sampleWithoutReplacement } from './rng';
import { median, mean, wilsonInterval } from './stats';

export type AttackAlgorithm = 'alg1' | 'alg2' | 'alg3' | 'alg4';
export const ATTACK_ALGORITHMS: readonly AttackAlgorithm[] = ['alg1', 'alg2', 'alg3', 'alg4'];
export type AttackLoss = 'xent' | 'margin';
export type LossPrecision = 'float32' | 'float64';

export interface AttackOptions {
  /** Test-set indices to attack, or a count drawn without replacement with `seed` (default 100). */
  samples?: number[] | number;
  /** Seed of the sample draw (default 0). */
  seed?: number;
  /** The data whose test split is attacked (default: loadMnist()). */
  data?: MnistData;
  /** Another split to draw the samples from instead of the test set. */
  split?: MnistSplit;
  /** Pixel budget, 1..784 (default 100, as the paper). */
  budget?: number;
  /** Temperature of the cross-entropy the attack follows (default 1, as the original code and Papernot). */
  temperature?: number;
  /** The loss the saliency follows: 'xent' (the paper) or 'margin' (max_{j!=y} z_j - z_y). */
  loss?: AttackLoss;
  /** Precision of the loss head: 'float32' (the paper) or 'float64' (the log1p form). */
  precision?: LossPrecision;
  /** Keep each attacked sample's first saliency map in its record (for pictures). */
  keepSaliency?: boolean;
  /** Samples per native call (default 16; Algorithm 4: 2): progress granularity. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface AttackRecord {
  /** Index in the split (the test set by default). */
  index: number;
  label: number;
  /** False when the model misclassified the sample to begin with (not attacked). */
  attacked: boolean;
  success: boolean;
  /** Pixels the algorithm chose (the paper's i); on success, the number it took. */
  pixels: number;
  /** Pixels whose value actually differs from the original. */
  l0: number;
  initialPrediction: number;
  finalPrediction: number;
  /** Every candidate entry of the saliency map was exactly zero (gradient masking). */
  saliencyAllZero: boolean;
  /** The chosen candidates: p = pixel p set to 1, 784 + p = set to 0. */
  path: number[];
  /** The image when the attack ended (784 values in [0, 1]). */
  adversarial: Float32Array;
  /** The first saliency map (1,568 entries; Algorithms 1 and 3: dL/dx in the first 784), when kept. */
  saliency?: Float64Array;
}

export interface AttackSummary {
  algorithm: AttackAlgorithm;
  budget: number;
  temperature: number;
  loss: AttackLoss;
  precision: LossPrecision;
  /** Samples drawn, and how many the model classified correctly (the attacked ones). */
  samples: number;
  attacked: number;
  successes: number;
  successRate: number;
  /** 95% Wilson score interval of the success rate. */
  interval: { low: number; high: number };
  meanPixels?: number;
  medianPixels?: number;
  /** successRateByBudget[k - 1]: the success rate with a budget of k pixels, k = 1..budget. */
  successRateByBudget: number[];
  /** Attacked samples whose saliency map was all zero. */
  allZeroSaliency: number;
  seconds: number;
}

export interface AttackResult {
  summary: AttackSummary;
  records: AttackRecord[];
}

const ALGORITHM_NUMBER: Record<AttackAlgorithm, 1 | 2 | 3 | 4> = { alg1: 1, alg2: 2, alg3: 3, alg4: 4 };

export interface ResolvedAttackOptions {
  algorithm: AttackAlgorithm;
  budget: number;
  temperature: number;
  loss: AttackLoss;
  precision: LossPrecision;
  indices: number[];
}

/** Validates the options and draws the samples; throws a coded error on nonsense. */
export function resolveAttackOptions(alg: unknown, split: MnistSplit, opts: AttackOptions = {}): ResolvedAttackOptions {
  if (typeof alg !== 'string') throw typeError(`algorithm must be one of ${ATTACK_ALGORITHMS.join(', ')}`);
  if (!(ATTACK_ALGORITHMS as readonly string[]).includes(alg))
    throw rangeError(`unknown algorithm '${alg}' (expected one of ${ATTACK_ALGORITHMS.join(', ')})`);
  const budget = checkNumber(opts.budget ?? 100, 'budget', { min: 1, max: 784, integer: true });
  const temperature = checkNumber(opts.temperature ?? 1, 'temperature', { min: 0, minExclusive: true });
  const loss = opts.loss ?? 'xent';
  if (loss !== 'xent' && loss !== 'margin') throw rangeError(`loss must be 'xent' or 'margin' (got '${String(loss)}')`);
  const precision = opts.precision ?? 'float32';
  if (precision !== 'float32' && precision !== 'float64')
    throw rangeError(`precision must be 'float32' or 'float64' (got '${String(precision)}')`);
  let indices: number[];
  const samples = opts.samples ?? 100;
  if (typeof samples === 'number') {
    checkNumber(samples, 'samples', { min: 1, max: split.count, integer: true });
    const seed = checkNumber(opts.seed ?? 0, 'seed', { min: 0, max: 0xffffffff, integer: true });
    indices = sampleWithoutReplacement(split.count, samples, seed, 7);
  } else if (Array.isArray(samples)) {
    if (samples.length === 0) throw rangeError('samples must not be empty', 'TEMPERED_INVALID_LENGTH');
    indices = samples.map((i, k) => checkNumber(i, `samples[${k}]`, { min: 0, max: split.count - 1, integer: true }));
    if (new Set(indices).size !== indices.length) throw rangeError('samples holds a repeated index');
  } else {
    throw typeError('samples must be a count or an array of indices');
  }
  return { algorithm: alg as AttackAlgorithm, budget, temperature, loss, precision, indices };
}

let defaultData: Promise<MnistData> | undefined;

/**
 * Attacks `model` with Algorithm `alg` on test samples (opts.samples: indices, or a count
 * drawn with opts.seed). Only the samples the model classifies correctly are attacked;
 * the others are recorded with attacked = false and count in neither the numerator nor
 * the denominator of the success rate.
 */
export async function runAttack(model: Model, alg: AttackAlgorithm, opts: AttackOptions = {}): Promise<AttackResult> {
  if (!(model instanceof Model)) throw typeError('model must be a Model');
  if (opts.split !== undefined && (typeof opts.split !== 'object' || !types.isFloat32Array(opts.split.images)))
    throw typeError('split must be an MNIST split (e.g. data.test)');
  const split = opts.split ?? opts.data?.test ?? (await (defaultData ??= loadMnist())).test;
  const o = resolveAttackOptions(alg, split, opts);
  const chunk = checkNumber(opts.chunk ?? (o.algorithm === 'alg4' ? 2 : 16), 'chunk', { min: 1, integer: true });
  const started = Date.now();
  const records: AttackRecord[] = [];
  for (let at = 0; at < o.indices.length; at += chunk) {
    const ids = o.indices.slice(at, at + chunk);
    const images = new Float32Array(ids.length * 784);
    const labels = new Int32Array(ids.length);
    ids.forEach((idx, k) => {
      images.set(split.images.subarray(idx * 784, (idx + 1) * 784), k * 784);
      labels[k] = split.labels[idx];
    });
    let r: NativeAttackResult;
    try {
      r = await model.nativeModel.attack(images, labels, {
        algorithm: ALGORITHM_NUMBER[o.algorithm],
        budget: o.budget,
        loss: o.loss,
        precision: o.precision,
        temperature: o.temperature,
        wantSaliency: !!opts.keepSaliency,
      });
    } catch (e) {
      throw e instanceof Error ? e : new TemperedError('TEMPERED_IO', String(e));
    }
    ids.forEach((idx, k) => {
      const path: number[] = [];
      for (let s = 0; s < o.budget; s++) {
        const c = r.path[k * o.budget + s];
        if (c < 0) break;
        path.push(c);
      }
      records.push({
        index: idx,
        label: labels[k],
        attacked: r.attacked[k] === 1,
        success: r.success[k] === 1,
        pixels: r.iterations[k],
        l0: r.l0[k],
        initialPrediction: r.initialPrediction[k],
        finalPrediction: r.finalPrediction[k],
        saliencyAllZero: r.saliencyZero[k] === 1,
        path,
        adversarial: r.adversarial.slice(k * 784, (k + 1) * 784),
        saliency: r.saliency ? r.saliency.slice(k * 1568, (k + 1) * 1568) : undefined,
      });
    });
    opts.onProgress?.(Math.min(o.indices.length, at + chunk), o.indices.length);
  }
  return { summary: summarize(o, records, (Date.now() - started) / 1000), records };
}

export function summarize(o: Omit<ResolvedAttackOptions, 'indices'>, records: AttackRecord[], seconds: number): AttackSummary {
  const attacked = records.filter((r) => r.attacked);
  const wins = attacked.filter((r) => r.success);
  const pixels = wins.map((r) => r.pixels);
  const byBudget: number[] = [];
  const needed = new Array<number>(o.budget + 1).fill(0);
  for (const p of pixels) needed[p]++;
  let cumulative = 0;
  for (let k = 1; k <= o.budget; k++) {
    cumulative += needed[k];
    byBudget.push(attacked.length ? cumulative / attacked.length : 0);
  }
  return {
    algorithm: o.algorithm,
    budget: o.budget,
    temperature: o.temperature,
    loss: o.loss,
    precision: o.precision,
    samples: records.length,
    attacked: attacked.length,
    successes: wins.length,
    successRate: attacked.length ? wins.length / attacked.length : 0,
    interval: wilsonInterval(wins.length, attacked.length),
    meanPixels: mean(pixels),
    medianPixels: median(pixels),
    successRateByBudget: byBudget,
    allZeroSaliency: attacked.filter((r) => r.saliencyAllZero).length,
    seconds,
  };
}
