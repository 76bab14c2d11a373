// Brute-force Algorithms 1-4 for one sample, written independently of the native attack
// loop: every saliency entry of Algorithms 2 and 4 comes from a full forward pass of the
// perturbed image (model.attackLosses, no sweep), the gradient of 1 and 3 from
// model.inputGradient, and the candidate order, tie-breaks, pixel updates and success
// checks are plain TypeScript following docs/algorithms.md.
//
// Below them, the attacks of the literature in float64 on the reference network
// (network.ts, the spec-built arch-network.ts on the paper's spec), independent of the engine: JSMA's full ten-row Jacobian and its brute-force
// pair search, and one step of PGD / FGSM with the float32 arithmetic of the step emulated.
import type { Model as NativeModel, NativeLossSpec } from '../../binding';
import { referenceLogitGradients as logitGradientsBySpec } from './arch-network';
import type { Numbers } from './layers';
import { forward, PAPER_SPEC, Params } from './network';
import { uniform24 } from './rng';

export interface BruteForceOutcome {
  attacked: boolean;
  success: boolean;
  pixels: number;
  path: number[];
  finalPrediction: number;
  saliencyAllZero: boolean;
  adversarial: Float32Array;
}

const P = 784;

function argmax(z: ArrayLike<number>, offset = 0): number {
  let best = 0;
  for (let j = 1; j < 10; j++) if (z[offset + j] > z[offset + best]) best = j;
  return best;
}

async function classify(model: NativeModel, image: Float32Array): Promise<number> {
  return argmax(await model.predict(image));
}

/** S over the 1,568 candidates (p: set to 1, 784 + p: set to 0) of `image`; skipped pixels get NaN. */
export async function bruteForceSaliency(
  model: NativeModel,
  image: Float32Array,
  label: number,
  spec: NativeLossSpec,
  skip?: boolean[],
): Promise<Float64Array> {
  const base = (await model.attackLosses(image, Int32Array.of(label), spec)).loss[0];
  const perturbed = new Float32Array(2 * P * P);
  for (let c = 0; c < 2 * P; c++) {
    perturbed.set(image, c * P);
    perturbed[c * P + (c % P)] = c < P ? 1 : 0;
  }
  const losses = (await model.attackLosses(perturbed, new Int32Array(2 * P).fill(label), spec)).loss;
  const s = new Float64Array(2 * P);
  for (let c = 0; c < 2 * P; c++) {
    if (skip?.[c % P]) s[c] = NaN;
    else if (spec.precision === 'float64') s[c] = Math.abs(losses[c] - base);
    else s[c] = Math.abs(Math.fround(Math.fround(losses[c]) - Math.fround(base)));
  }
  return s;
}

// Largest first, ties by id; NaN lowest.
function order(values: ArrayLike<number>, ids: number[]): number[] {
  const v = (i: number) => (Number.isNaN(values[i]) ? -Infinity : values[i]);
  return [...ids].sort((a, b) => {
    const d = v(b) - v(a); // NaN when both are the same infinity
    return d !== 0 && !Number.isNaN(d) ? d : a - b;
  });
}

export async function bruteForceAttack(
  model: NativeModel,
  original: Float32Array,
  label: number,
  algorithm: 1 | 2 | 3 | 4,
  budget: number,
  spec: NativeLossSpec,
): Promise<BruteForceOutcome> {
  const image = Float32Array.from(original);
  const out: BruteForceOutcome = {
    attacked: false,
    success: false,
    pixels: 0,
    path: [],
    finalPrediction: -1,
    saliencyAllZero: false,
    adversarial: image,
  };
  out.finalPrediction = await classify(model, image);
  if (out.finalPrediction !== label) return out;
  out.attacked = true;
  const modified = new Array<boolean>(P).fill(false);
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i);

  let candidates: number[] = [];
  if (algorithm === 1 || algorithm === 3) {
    const g = (await model.inputGradient(image, Int32Array.of(label), spec)).gradient;
    out.saliencyAllZero = g.every((x) => x === 0);
    if (algorithm === 1) {
      candidates = order(
        g,
        ids(P).filter((p) => g[p] > 0),
      );
    } else {
      const magnitude = Array.from(g, Math.abs);
      candidates = order(magnitude, ids(P)).map((p) => (g[p] > 0 ? p : P + p));
    }
  } else if (algorithm === 2) {
    const s = await bruteForceSaliency(model, image, label, spec);
    out.saliencyAllZero = s.every((x) => x === 0);
    candidates = order(s, ids(2 * P));
  }

  let cursor = 0;
  for (let step = 0; step < budget; step++) {
    let chosen = -1;
    if (algorithm === 4) {
      const s = await bruteForceSaliency(model, image, label, spec, modified);
      if (step === 0) out.saliencyAllZero = s.every((x) => x === 0);
      for (let c = 0; c < 2 * P; c++) {
        if (modified[c % P]) continue;
        const v = Number.isNaN(s[c]) ? -Infinity : s[c];
        const best = chosen < 0 ? -Infinity : Number.isNaN(s[chosen]) ? -Infinity : s[chosen];
        if (chosen < 0 || v > best) chosen = c;
      }
    } else {
      while (cursor < candidates.length && modified[candidates[cursor] % P]) cursor++;
      if (cursor < candidates.length) chosen = candidates[cursor++];
    }
    if (chosen < 0) break;
    modified[chosen % P] = true;
    image[chosen % P] = chosen < P ? 1 : 0;
    out.path.push(chosen);
    out.pixels = step + 1;
    out.finalPrediction = await classify(model, image);
    if (out.finalPrediction !== label) {
      out.success = true;
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The attacks of the literature, in float64

/** The float64 logits of one image. */
export function referenceLogits(p: Params, image: Numbers): Float64Array {
  return forward(p, image, 1, []).logits;
}

/**
 * For one image: the logits and, for each of `seeds.length / 10` rows, the input gradient of
 * the linear function seeds[row] . z of the logits, by backpropagation in float64.
 */
export function referenceLogitGradients(
  p: Params,
  image: Numbers,
  seedsOf: (logits: Float64Array) => Float64Array,
): { logits: Float64Array; gradients: Float64Array } {
  return logitGradientsBySpec(PAPER_SPEC, new Map(Object.entries(p)), image, seedsOf);
}

function softmax(z: Float64Array, temperature: number): Float64Array {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v / temperature);
  const e = Array.from(z, (v) => Math.exp(v / temperature - m));
  const s = e.reduce((x, y) => x + y, 0);
  return Float64Array.from(e, (v) => v / s);
}

export function argmax64(z: ArrayLike<number>): number {
  return argmax(z);
}

/** JSMA's F: 'softmax' (at `temperature`) or 'logits'. */
export type JsmaVariant = 'softmax' | 'logits';

/**
 * The full Jacobian dF/dx [10][784] of one image (ten backward passes) and its logits.
 * Softmax rows: dF_k/dz_j = F_k (delta_kj - F_j) / T.
 */
export function referenceJacobian(
  p: Params,
  image: Numbers,
  variant: JsmaVariant,
  temperature: number,
): { logits: Float64Array; jacobian: Float64Array } {
  const { logits, gradients } = referenceLogitGradients(p, image, (z) => {
    const seeds = new Float64Array(100);
    const f = softmax(z, temperature);
    for (let k = 0; k < 10; k++)
      for (let j = 0; j < 10; j++)
        seeds[k * 10 + j] = variant === 'logits' ? (k === j ? 1 : 0) : (f[k] * ((k === j ? 1 : 0) - f[j])) / temperature;
    return seeds;
  });
  return { logits, jacobian: gradients };
}

export interface JsmaIteration {
  /** The float64 prediction of the image. */
  prediction: number;
  /** a = J[t], b = sum over the other rows, over all 784 pixels. */
  a: Float64Array;
  b: Float64Array;
  /** The search domain: pixels below 1 and not used, in raster order. */
  domain: number[];
  /** The best admissible pair (p < q) by brute force, or null; and its alpha * |beta|. */
  best: [number, number] | null;
  bestValue: number;
  /** alpha * |beta| of any pair (NaN when not admissible). */
  value(p: number, q: number): number;
}

/** One JSMA iteration on `image` towards `target`, in float64, by the definition. */
export function referenceJsmaIteration(
  p: Params,
  image: Float32Array,
  target: number,
  used: Set<number>,
  variant: JsmaVariant,
  temperature: number,
): JsmaIteration {
  const { logits, jacobian } = referenceJacobian(p, image, variant, temperature);
  const a = new Float64Array(784);
  const b = new Float64Array(784);
  for (let px = 0; px < 784; px++) {
    a[px] = jacobian[target * 784 + px];
    for (let j = 0; j < 10; j++) if (j !== target) b[px] += jacobian[j * 784 + px];
  }
  const domain: number[] = [];
  for (let px = 0; px < 784; px++) if (image[px] < 1 && !used.has(px)) domain.push(px);
  const value = (x: number, y: number) => {
    const alpha = a[x] + a[y];
    const beta = b[x] + b[y];
    return alpha > 0 && beta < 0 ? alpha * -beta : NaN;
  };
  let best: [number, number] | null = null;
  let bestValue = -Infinity;
  for (let i = 0; i < domain.length; i++)
    for (let k = i + 1; k < domain.length; k++) {
      const v = value(domain[i], domain[k]);
      if (v > bestValue) {
        bestValue = v;
        best = [domain[i], domain[k]];
      }
    }
  return { prediction: argmax(logits), a, b, domain, best, bestValue, value };
}

/** The loss an attack follows and its gradient w.r.t. the logits, in float64 (margin, or the cross-entropy at T). */
function lossGradient(z: Float64Array, label: number, loss: 'xent' | 'margin', temperature: number): Float64Array {
  const g = new Float64Array(10);
  if (loss === 'margin') {
    let j = label === 0 ? 1 : 0;
    for (let k = 0; k < 10; k++) if (k !== label && z[k] > z[j]) j = k;
    g[j] = 1;
    g[label] = -1;
    return g;
  }
  const f = softmax(z, temperature);
  for (let k = 0; k < 10; k++) g[k] = (f[k] - (k === label ? 1 : 0)) / temperature;
  return g;
}

/** dL/dx of one image in float64, and its logits. */
export function referenceInputGradient(
  p: Params,
  image: Numbers,
  label: number,
  loss: 'xent' | 'margin',
  temperature: number,
): { logits: Float64Array; gradient: Float64Array } {
  const { logits, gradients } = referenceLogitGradients(p, image, (z) => lossGradient(z, label, loss, temperature));
  return { logits, gradient: gradients };
}

/** PGD's seeded random start in emulated float32: clip01(x + (2u - 1) eps), u = counter_uniform(seed, 40, key, p). */
export function referenceRandomStart(original: Float32Array, epsilon: number, seed: number, key: number): Float32Array {
  const eps = Math.fround(epsilon);
  return Float32Array.from(original, (x, px) => {
    const u = uniform24(seed, 40, key, px);
    const v = Math.fround(x + Math.fround((2 * u - 1) * eps));
    return Math.min(Math.max(v, 0), 1);
  });
}

/** One sign step in emulated float32: min(max(x + step sign(g), max(x0 - eps, 0)), min(x0 + eps, 1)). */
export function referenceSignStep(
  current: Float32Array,
  original: Float32Array,
  gradient: Float64Array,
  epsilon: number,
  stepSize: number,
): Float32Array {
  const eps = Math.fround(epsilon);
  const step = Math.fround(stepSize);
  return Float32Array.from(current, (x, px) => {
    const s = gradient[px] > 0 ? 1 : gradient[px] < 0 ? -1 : 0;
    const v = Math.fround(x + step * s);
    const lo = Math.max(Math.fround(original[px] - eps), 0);
    const hi = Math.min(Math.fround(original[px] + eps), 1);
    return Math.min(Math.max(v, lo), hi);
  });
}
