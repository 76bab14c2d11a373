// Gradient statistics: how large dL/dx is at each evaluation temperature, in float32 (what
// the paper's frameworks computed) and float64, and how many samples' float32 gradient is
// exactly zero: the paper's "factor of 1e10" and "only ~30% usable", made measurable.
import { checkNumber, rangeError, typeError } from './errors';
import { checkLimit } from './limits';
import type { MnistSplit } from './mnist';
import { Model, checkSplitFits } from './model';
import type { AttackLoss, LossPrecision } from './attack';

export interface GradientStatsOptions {
  /** Indices into the split (e.g. the same test samples the attacks use). */
  indices: number[];
  /** Evaluation temperatures (default [1]). */
  temperatures?: number[];
  /** The loss differentiated (default 'xent'). */
  loss?: AttackLoss;
}

export interface GradientStatsRow {
  temperature: number;
  precision: LossPrecision;
  loss: AttackLoss;
  samples: number;
  /** Mean over samples and pixels of |dL/dx|. */
  meanAbs: number;
  /** Largest |dL/dx| over all samples and pixels. */
  maxAbs: number;
  /** Median over samples of each sample's largest |dL/dx|. */
  medianSampleMax: number;
  /** Samples whose gradient is exactly zero in every pixel. */
  zeroSamples: number;
  zeroFraction: number;
  /** Samples with at least one subnormal entry (float32: |g| < 1.18e-38). */
  subnormalSamples: number;
  /** Mean loss. */
  meanLoss: number;
}

const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;

/** One row per (temperature, precision). Samples are taken as given (no filtering). */
export async function gradientStats(model: Model, split: MnistSplit, opts: GradientStatsOptions): Promise<GradientStatsRow[]> {
  if (!(model instanceof Model)) throw typeError('model must be a Model');
  if (!Array.isArray(opts.indices) || opts.indices.length === 0)
    throw rangeError('indices must be a non-empty array', 'TEMPERED_INVALID_LENGTH');
  const temperatures = opts.temperatures ?? [1];
  temperatures.forEach((t, k) => checkLimit(t, `temperatures[${k}]`, 'lossTemperature'));
  const loss = opts.loss ?? 'xent';
  const n = opts.indices.length;
  checkSplitFits(split, model);
  const size = model.inputSize;
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  opts.indices.forEach((idx, k) => {
    checkNumber(idx, `indices[${k}]`, { min: 0, max: split.count - 1, integer: true });
    images.set(split.images.subarray(idx * size, (idx + 1) * size), k * size);
    labels[k] = split.labels[idx];
  });
  const rows: GradientStatsRow[] = [];
  for (const temperature of temperatures) {
    for (const precision of ['float32', 'float64'] as const) {
      const g = await model.nativeModel.inputGradient(images, labels, { loss, precision, temperature });
      let sum = 0;
      let max = 0;
      let zero = 0;
      let subnormal = 0;
      const sampleMax: number[] = [];
      for (let i = 0; i < n; i++) {
        let m = 0;
        let sub = false;
        for (let p = 0; p < size; p++) {
          const a = Math.abs(g.gradient[i * size + p]);
          sum += a;
          if (a > m) m = a;
          if (a > 0 && a < FLOAT32_MIN_NORMAL) sub = true;
        }
        sampleMax.push(m);
        if (m > max) max = m;
        if (m === 0) zero++;
        if (sub && precision === 'float32') subnormal++;
      }
      sampleMax.sort((a, b) => a - b);
      let lossSum = 0;
      for (let i = 0; i < n; i++) lossSum += g.loss[i];
      rows.push({
        temperature,
        precision,
        loss,
        samples: n,
        meanAbs: sum / (n * size),
        maxAbs: max,
        medianSampleMax: n % 2 ? sampleMax[n >> 1] : (sampleMax[n / 2 - 1] + sampleMax[n / 2]) / 2,
        zeroSamples: zero,
        zeroFraction: zero / n,
        subnormalSamples: subnormal,
        meanLoss: lossSum / n,
      });
    }
  }
  return rows;
}
