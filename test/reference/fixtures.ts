// Deterministic test inputs: images with deliberate constant regions (so that max-pool windows
// hold exactly equal positive values and the tie rule matters), labels, soft targets, and
// parameters (the reference Glorot initialisation, scaled, with random biases).

import { glorotParameters } from './init';
import { LAYOUT } from './network';
import { FixtureRandom } from './rng';

/**
 * n images [n][784]. Sample s is of kind kinds[s % kinds.length] (default: cycle 0, 1, 2):
 *   0: uniform noise in [0, 1);
 *   1: top half constant 0.5, bottom half noise;
 *   2: all zero except a random 9x9 patch (the zero region makes every conv output there
 *      equal to a function of the biases alone: ties everywhere in both pools).
 */
export function makeImages(n: number, seed: number, kinds: number[] = [0, 1, 2]): Float32Array {
  const r = new FixtureRandom(seed, 1);
  const images = new Float32Array(n * 784);
  for (let s = 0; s < n; s++) {
    const kind = kinds[s % kinds.length];
    const py = 4 + r.int(14);
    const px = 4 + r.int(14);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        let v: number;
        if (kind === 0) v = r.next();
        else if (kind === 1) v = y < 14 ? 0.5 : r.next();
        else v = y >= py && y < py + 9 && x >= px && x < px + 9 ? r.next() : 0;
        images[s * 784 + y * 28 + x] = v;
      }
    }
  }
  return images;
}

export function makeLabels(n: number, seed: number): Int32Array {
  const r = new FixtureRandom(seed, 2);
  const labels = new Int32Array(n);
  for (let s = 0; s < n; s++) labels[s] = r.int(10);
  return labels;
}

/** Rows of probabilities (float32), peaked on a random class, never exactly one-hot. */
export function makeSoftTargets(n: number, seed: number): Float32Array {
  const r = new FixtureRandom(seed, 3);
  const t = new Float32Array(n * 10);
  for (let s = 0; s < n; s++) {
    const row: number[] = [];
    const peak = r.int(10);
    for (let j = 0; j < 10; j++) row.push(Math.exp(2 * r.next() + (j === peak ? 2 : 0)));
    const sum = row.reduce((a, b) => a + b, 0);
    for (let j = 0; j < 10; j++) t[s * 10 + j] = row[j] / sum;
  }
  return t;
}

export interface ParameterOptions {
  /** Multiplies every weight tensor (default 1). */
  weightScale?: number;
  /** Extra factor on fc3.weight, to spread the logits (default 1). */
  logitScale?: number;
  /** Biases uniform in [lo, hi) (default [-0.05, 0.15)). */
  biasRange?: [number, number];
}

export function makeParameters(seed: number, options: ParameterOptions = {}): Float32Array {
  const weightScale = options.weightScale ?? 1;
  const logitScale = options.logitScale ?? 1;
  const [lo, hi] = options.biasRange ?? [-0.05, 0.15];
  const p = glorotParameters(seed);
  const r = new FixtureRandom(seed, 4);
  for (const t of LAYOUT) {
    const isBias = t.shape.length === 1;
    const factor = weightScale * (t.name === 'fc3.weight' ? logitScale : 1);
    for (let i = t.offset; i < t.offset + t.size; i++) {
      p[i] = isBias ? r.uniform(lo, hi) : p[i] * factor;
    }
  }
  return p;
}
