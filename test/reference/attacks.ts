// Brute-force Algorithms 1-4 for one sample, written independently of the native attack
// loop: every saliency entry of Algorithms 2 and 4 comes from a full forward pass of the
// perturbed image (model.attackLosses, no sweep), the gradient of 1 and 3 from
// model.inputGradient, and the candidate order, tie-breaks, pixel updates and success
// checks are plain TypeScript following PAPER-NOTES.md.
import type { Model as NativeModel, NativeLossSpec } from '../../binding';

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
  const out: BruteForceOutcome = { attacked: false, success: false, pixels: 0, path: [], finalPrediction: -1, saliencyAllZero: false, adversarial: image };
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
      candidates = order(g, ids(P).filter((p) => g[p] > 0));
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
