// Element-wise comparison of an engine tensor against its reference, with a stated tolerance:
//   element i passes iff |native_i - ref_i| <= atol + rtol * |ref_i|
// The report names the worst element (largest error / allowance), with its coordinates.

import { f64, Numbers } from './layers';

// Read once: under jest, `Math.x` looked up inside a hot loop is ~100x slower (vm context globals).
const { abs, max } = Math;

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Worst {
  index: number;
  /** The index as [sample, ...per-sample coordinates] when a shape was given. */
  coords: number[];
  native: number;
  reference: number;
  error: number;
  allowed: number;
  /** error / allowed; the element passes iff ratio <= 1. */
  ratio: number;
}

export interface Comparison {
  name: string;
  ok: boolean;
  count: number;
  failures: number;
  tolerance: Tolerance;
  /** max |ref| over the tensor. */
  scale: number;
  /** The worst element; null for an empty tensor. */
  worst: Worst | null;
  /** max |native - ref| over the tensor. */
  maxError: number;
  /** Set when the two tensors differ in length. */
  lengthMismatch?: string;
}

export function maxAbs(values: Numbers): number {
  const a = f64(values); // one array type in the loop (see f64)
  let m = 0;
  for (let i = 0; i < a.length; i++) m = max(m, abs(a[i]));
  return m;
}

/**
 * A tolerance scaled to the reference tensor: atol = atolScale * max|ref|, so that errors of
 * float32 accumulation (proportional to the tensor's magnitude) are judged relative to it.
 */
export function scaled(ref: Numbers, atolScale: number, rtol: number): Tolerance {
  return { atol: atolScale * maxAbs(ref), rtol };
}

/** Decode a flat index into [sample, ...coords] for a per-sample shape (row-major). */
export function decodeIndex(index: number, perSampleShape: number[] | undefined): number[] {
  if (!perSampleShape) return [index];
  const coords: number[] = [];
  let rest = index;
  for (let d = perSampleShape.length - 1; d >= 0; d--) {
    coords.unshift(rest % perSampleShape[d]);
    rest = Math.floor(rest / perSampleShape[d]);
  }
  coords.unshift(rest);
  return coords;
}

export function compare(
  name: string,
  nativeValues: Numbers,
  refValues: Numbers,
  tolerance: Tolerance,
  perSampleShape?: number[],
): Comparison {
  const native = f64(nativeValues); // one array type in the loop (see f64)
  const ref = f64(refValues);
  const result: Comparison = {
    name,
    ok: true,
    count: ref.length,
    failures: 0,
    tolerance,
    scale: maxAbs(ref),
    worst: null,
    maxError: 0,
  };
  if (native.length !== ref.length) {
    result.ok = false;
    result.lengthMismatch = `native has ${native.length} elements, reference ${ref.length}`;
    return result;
  }
  for (let i = 0; i < ref.length; i++) {
    const error = abs(native[i] - ref[i]);
    const allowed = tolerance.atol + tolerance.rtol * abs(ref[i]);
    // NaN in either tensor is an infinite error.
    const e = error !== error ? Infinity : error;
    const ratio = e === 0 ? 0 : allowed === 0 ? Infinity : e / allowed;
    if (ratio > 1) result.failures++;
    result.maxError = max(result.maxError, e);
    if (result.worst === null || ratio > result.worst.ratio) {
      result.worst = { index: i, coords: [], native: native[i], reference: ref[i], error: e, allowed, ratio };
    }
  }
  if (result.worst) result.worst.coords = decodeIndex(result.worst.index, perSampleShape);
  result.ok = result.failures === 0;
  return result;
}

export function formatComparison(c: Comparison): string {
  if (c.lengthMismatch) return `${c.name}: length mismatch (${c.lengthMismatch})`;
  const w = c.worst;
  const head = `${c.name}: ${c.ok ? 'ok' : `FAILED ${c.failures}/${c.count}`}`;
  if (!w) return `${head} (empty)`;
  return (
    `${head}; worst at [${w.coords.join(',')}] native=${w.native} ref=${w.reference} ` +
    `|err|=${w.error.toExponential(3)} allowed=${w.allowed.toExponential(3)} (ratio ${w.ratio.toExponential(2)}); ` +
    `atol=${c.tolerance.atol.toExponential(2)} rtol=${c.tolerance.rtol} max|ref|=${c.scale.toExponential(3)}`
  );
}

/** Throws one error listing every failed comparison (with its worst element). */
export function assertAllClose(label: string, comparisons: Comparison[]): void {
  const failed = comparisons.filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new Error(
      `${label}: ${failed.length} of ${comparisons.length} tensors out of tolerance\n` + failed.map(formatComparison).join('\n'),
    );
  }
}
