// Carlini-Wagner L2 as docs/algorithms.md defines it, in float64 TypeScript over a logits
// oracle with its vector-Jacobian product (the float64 network of test/reference/arch-network.ts
// in the tests). The network sees the float32 image fround(x'(w)); everything else is float64.
export interface CwOracle {
  /** Logits of one image, and the input gradient of <seed, z> for the seed chosen from them. */
  vjp(image: ArrayLike<number>, seed: (z: ArrayLike<number>) => Float64Array): { z: ArrayLike<number>; dx: ArrayLike<number> };
}

export interface CwOptions {
  steps: number;
  searchSteps: number;
  learningRate: number;
  initialConst: number;
  confidence: number;
}

/** One binary-search update: the constant's bounds and the next constant after a round. */
export function referenceNextConst(
  success: boolean,
  s: { lower: number; upper: number; c: number },
): { lower: number; upper: number; c: number } {
  if (success) {
    const upper = Math.min(s.upper, s.c);
    return { lower: s.lower, upper, c: (s.lower + upper) / 2 };
  }
  const lower = Math.max(s.lower, s.c);
  return { lower, upper: s.upper, c: s.upper < 1e10 ? (lower + s.upper) / 2 : s.c * 10 };
}

/** x'(w) = (tanh(w) + 1) / 2. */
export const cwImage = (w: number): number => (Math.tanh(w) + 1) / 2;
/** w_0 = atanh((2x - 1)(1 - 1e-6)). */
export const cwStart = (x: number): number => Math.atanh((2 * x - 1) * (1 - 1e-6));

function runnerUp(z: ArrayLike<number>, y: number): number {
  let k = -1;
  for (let j = 0; j < z.length; j++) if (j !== y && (k < 0 || z[j] > z[k])) k = j;
  return k;
}

/** The margin term m(z) = z_y - max_{j != y} z_j. */
export function cwMargin(z: ArrayLike<number>, y: number): number {
  return z[y] - z[runnerUp(z, y)];
}

/** Success at confidence kappa: argmax of z with kappa added to z_y is not y (first index on ties). */
export function cwSucceeds(z: ArrayLike<number>, y: number, kappa: number): boolean {
  let k = 0;
  for (let j = 1; j < z.length; j++) if (z[j] + (j === y ? kappa : 0) > z[k] + (k === y ? kappa : 0)) k = j;
  return k !== y;
}

/**
 * f(w) = ||x'(w) - x||^2 + c max(m(z(x'(w))), -kappa) and its gradient with respect to w
 * (the network evaluated at the float32 image; at the float64 one when `float32Image` is false,
 * for central differences).
 */
export function cwObjective(
  oracle: CwOracle,
  w: Float64Array,
  x: Float32Array,
  y: number,
  c: number,
  kappa: number,
  float32Image = true,
): { value: number; grad: Float64Array; z: ArrayLike<number>; image: ArrayLike<number> } {
  const image = float32Image ? Float32Array.from(w, (v) => cwImage(v)) : Float64Array.from(w, (v) => cwImage(v));
  let hinge = false;
  const { z, dx } = oracle.vjp(image, (zz) => {
    const seed = new Float64Array(zz.length);
    hinge = cwMargin(zz, y) > -kappa;
    if (hinge) {
      seed[y] = 1;
      seed[runnerUp(zz, y)] = -1;
    }
    return seed;
  });
  let value = c * Math.max(cwMargin(z, y), -kappa);
  const grad = new Float64Array(w.length);
  for (let p = 0; p < w.length; p++) {
    const d = cwImage(w[p]) - x[p];
    value += d * d;
    const t = Math.tanh(w[p]);
    grad[p] = (2 * d + (hinge ? c * dx[p] : 0)) * ((1 - t * t) / 2);
  }
  return { value, grad, z, image };
}

/** One Adam step (Kingma & Ba, bias-corrected; t counts from 1) on w in place. */
export function referenceAdamStep(w: Float64Array, m: Float64Array, v: Float64Array, g: ArrayLike<number>, t: number, lr: number): void {
  const b1 = 0.9;
  const b2 = 0.999;
  for (let p = 0; p < w.length; p++) {
    m[p] = b1 * m[p] + (1 - b1) * g[p];
    v[p] = b2 * v[p] + (1 - b2) * g[p] * g[p];
    const mHat = m[p] / (1 - b1 ** t);
    const vHat = v[p] / (1 - b2 ** t);
    w[p] -= (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
  }
}

export interface ReferenceCwResult {
  success: boolean;
  image: Float32Array;
  l2: number;
  /** Gradient evaluations (1-based, over all rounds) up to the best image; 0 when none succeeded. */
  evaluation: number;
  consts: number[];
  roundSuccess: boolean[];
}

/** The whole attack on one correctly classified image. */
export function referenceCwL2(oracle: CwOracle, x: Float32Array, y: number, o: CwOptions): ReferenceCwResult {
  let search = { lower: 0, upper: 1e10, c: o.initialConst };
  let best: ReferenceCwResult = { success: false, image: Float32Array.from(x), l2: 0, evaluation: 0, consts: [], roundSuccess: [] };
  let bestSq = Infinity;
  const consts: number[] = [];
  const roundSuccess: boolean[] = [];
  for (let round = 0; round < o.searchSteps; round++) {
    const w = Float64Array.from(x, cwStart);
    const m = new Float64Array(x.length);
    const v = new Float64Array(x.length);
    let succeeded = false;
    for (let t = 0; t < o.steps; t++) {
      const f = cwObjective(oracle, w, x, y, search.c, o.confidence);
      if (cwSucceeds(f.z, y, o.confidence)) {
        succeeded = true;
        let sq = 0;
        for (let p = 0; p < x.length; p++) sq += (f.image[p] - x[p]) ** 2;
        if (sq < bestSq) {
          bestSq = sq;
          best = { ...best, success: true, image: Float32Array.from(f.image), l2: Math.sqrt(sq), evaluation: round * o.steps + t + 1 };
        }
      }
      referenceAdamStep(w, m, v, f.grad, t + 1, o.learningRate);
    }
    consts.push(search.c);
    roundSuccess.push(succeeded);
    search = referenceNextConst(succeeded, search);
  }
  return { ...best, consts, roundSuccess };
}
