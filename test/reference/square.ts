// The L-infinity Square attack of docs/algorithms.md, written from that definition in plain
// TypeScript over any logits oracle (the float64 network of test/reference/arch-network.ts in
// the tests). Images are float32 values (every candidate pixel is fround(x +- fround(eps)),
// clipped), the margins float64. It keeps, per query, the margin gap of its accept/reject
// decision, so a test can tell a decision float32 rounding could flip from a clear one.
import { counterBits, uniform24 } from './rng';

export interface SquareShape {
  h: number;
  w: number;
  c: number;
}

export interface ReferenceSquareResult {
  success: boolean;
  /** Forward passes of perturbed images (the stripes included). */
  queries: number;
  image: Float32Array;
  prediction: number;
  /** |candidate margin - best margin| of every accept/reject decision, in order. */
  gaps: number[];
}

const STRIPES = 48;
const QUERY = 49;
const WINDOW = 50;
const SIGN = 51;
const SIGN_DRAWS = 32;
const CHECKPOINTS = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

/** p for the authors' iteration `it` (0-based) of a budget of `queries`: halved past each checkpoint of 10,000. */
export function referenceFraction(pInit: number, it: number, queries: number): number {
  const scaled = Math.floor((it * 10000) / queries);
  return CHECKPOINTS.reduce((p, end) => (scaled > end ? p / 2 : p), pInit);
}

/** The side of the square: round(sqrt(p h w)) kept in 1..max(min(h, w) - 1, 1). */
export function referenceSide(p: number, h: number, w: number): number {
  const top = Math.max(Math.min(h, w) - 1, 1);
  return Math.min(top, Math.max(1, Math.round(Math.sqrt(p * h * w))));
}

function argmax(z: ArrayLike<number>): number {
  let k = 0;
  for (let j = 1; j < z.length; j++) if (z[j] > z[k]) k = j;
  return k;
}

function margin(z: ArrayLike<number>, y: number): number {
  let other = -Infinity;
  for (let j = 0; j < z.length; j++) if (j !== y) other = Math.max(other, z[j]);
  return z[y] - other;
}

/** The attack on one correctly classified image x (NHWC) with label y and key `key`. */
export function referenceSquare(
  logitsOf: (image: Float32Array) => ArrayLike<number>,
  x: Float32Array,
  y: number,
  key: number,
  shape: SquareShape,
  o: { epsilon: number; queries: number; pInit: number; seed: number },
): ReferenceSquareResult {
  const { h, w, c } = shape;
  const eps = Math.fround(o.epsilon);
  const toward = (v: number, minus: boolean) => Math.min(1, Math.max(0, Math.fround(minus ? v - eps : v + eps)));
  const at = (row: number, col: number, ch: number) => (row * w + col) * c + ch;
  const best = new Float32Array(x.length);
  for (let col = 0; col < w; col++)
    for (let ch = 0; ch < c; ch++) {
      const minus = uniform24(o.seed, STRIPES, key, col * c + ch) < 0.5;
      for (let row = 0; row < h; row++) best[at(row, col, ch)] = toward(x[at(row, col, ch)], minus);
    }
  let z = logitsOf(best);
  let bestMargin = margin(z, y);
  let prediction = argmax(z);
  let queries = 1;
  const gaps: number[] = [];
  while (prediction === y && queries < o.queries) {
    queries++;
    const s = referenceSide(referenceFraction(o.pInit, queries - 2, o.queries), h, w);
    const sub = counterBits(o.seed, QUERY, key, queries);
    const top = Math.min(Math.floor(uniform24(sub, WINDOW, 0, 0) * (h - s + 1)), h - s);
    const left = Math.min(Math.floor(uniform24(sub, WINDOW, 0, 1) * (w - s + 1)), w - s);
    const candidate = Float32Array.from(best);
    for (let draw = 0; draw < SIGN_DRAWS; draw++) {
      let differs = false;
      for (let ch = 0; ch < c; ch++) {
        const minus = uniform24(sub, SIGN, draw, ch) < 0.5;
        for (let row = top; row < top + s; row++)
          for (let col = left; col < left + s; col++) {
            const v = toward(x[at(row, col, ch)], minus);
            candidate[at(row, col, ch)] = v;
            if (v !== best[at(row, col, ch)]) differs = true;
          }
      }
      if (differs) break;
    }
    z = logitsOf(candidate);
    const m = margin(z, y);
    gaps.push(Math.abs(m - bestMargin));
    if (m < bestMargin) {
      bestMargin = m;
      best.set(candidate);
      prediction = argmax(z);
    }
  }
  return { success: prediction !== y, queries, image: best, prediction, gaps };
}
