// Finite-difference check of the engine's analytic gradients.
//
// The objective is the float64 REFERENCE network's lossScale * mean cross-entropy (with the same
// dropout masks as the engine's trace at that seed and step). For a sample of coordinates
//   (a) 8 per parameter tensor, alternately uniformly random and random among those whose
//       reference gradient is at least 10% of the tensor's largest (so that most checks are of
//       sizeable components); candidates at a kink (below) are replaced, up to 16 candidates,
//   (b) 20 input pixels,
// the central difference  fd = (L(x + eps) - L(x - eps)) / (2 eps),  eps = 1e-4 (float64), is
// compared with the engine's `grad` / `dinput` from Model.trace():
//   relative error = |native - fd| / max(|fd|, 1e-2 * scale)  must be < 1e-3,
// where scale is the largest |native gradient| in that tensor (at T = 20 and for small
// components the gradients are tiny, so they are judged against the tensor's scale).
// The reference's own analytic gradient is held to the same check with 1e-5, proving the
// reference backward pass itself.
//
// The network is piecewise smooth: a coordinate is skipped when the reference's activation
// pattern (every ReLU's on/off state and every max-pool winner) differs between x + eps and
// x - eps, i.e. when a kink lies within eps; a retry with eps = 1e-6 is made first, then the
// next candidate is taken (up to 16 per tensor, 30 pixels). The test requires that at least 6
// coordinates of each tensor, and 15 pixels, were checked. Images are pure noise here (no
// constant regions) so that max-pool ties, where the gradient does not exist, do not arise.
// n = 2 keeps the float64 reference fast.
//
// Set REF_REPORT=1 to print the worst relative error per tensor and case.

import { native } from '../lib/native';
import { maxAbs } from './reference/compare';
import { makeImages, makeLabels, makeParameters, makeSoftTargets } from './reference/fixtures';
import {
  Activations,
  backward,
  dropoutMasks,
  forward,
  LAYOUT,
  Masks,
  NetConfig,
  objective,
  Params,
  sameActivationPattern,
  splitParameters,
  Stage,
  stageOfParameter,
} from './reference/network';
import { FixtureRandom } from './reference/rng';

// Read once: `Math.x` looked up in a hot loop is slow under jest (vm context globals).
const { abs } = Math;

const N = 2;
const EPS = [1e-4, 1e-6];
const REL_TOL_NATIVE = 1e-3;
const REL_TOL_REFERENCE = 1e-5;
const FLOOR_FRACTION = 1e-2;
const COORDS_PER_TENSOR = 8;
const MAX_CANDIDATES = 16;
const MIN_CHECKED_PER_TENSOR = 6;
const PIXELS = 20;
const MAX_PIXEL_CANDIDATES = 30;
const MIN_CHECKED_PIXELS = 15;

interface GradCase {
  name: string;
  soft: boolean;
  cfg: NetConfig;
}

const CASES: GradCase[] = [
  { name: 'T=1 hard, no dropout', soft: false, cfg: { temperature: 1, lossScale: 1, dropoutRate: 0, dropoutSeed: 0, step: 0 } },
  { name: 'T=1 soft, dropout 0.5', soft: true, cfg: { temperature: 1, lossScale: 1, dropoutRate: 0.5, dropoutSeed: 99, step: 3 } },
  {
    name: 'T=20 hard, dropout 0.5, lossScale 20',
    soft: false,
    cfg: { temperature: 20, lossScale: 20, dropoutRate: 0.5, dropoutSeed: 5, step: 11 },
  },
  {
    name: 'T=20 soft, no dropout, lossScale 1',
    soft: true,
    cfg: { temperature: 20, lossScale: 1, dropoutRate: 0, dropoutSeed: 0, step: 0 },
  },
];

const report: string[] = [];
afterAll(() => {
  // eslint-disable-next-line no-console
  if (process.env.REF_REPORT) console.log(`finite differences (gradcheck.test.ts):\n${report.join('\n')}`);
});

/** A central difference of the reference objective, or null when a kink lies within eps. */
function centralDifference(evaluate: (delta: number) => { loss: number; a: Activations }): number | null {
  for (const eps of EPS) {
    const plus = evaluate(eps);
    const minus = evaluate(-eps);
    if (sameActivationPattern(plus.a, minus.a)) return (plus.loss - minus.loss) / (2 * eps);
  }
  return null;
}

/**
 * Up to `count` distinct candidate indices of [0, size), alternating between a uniformly random
 * index and a random one among the entries whose |ref| is at least 10% of the tensor's largest
 * (so that most checks are of sizeable components). The caller takes them in order until it
 * has checked enough coordinates away from kinks.
 */
function candidateCoordinates(ref: Float64Array, count: number, r: FixtureRandom): number[] {
  if (ref.length <= count) return [...Array(ref.length).keys()];
  const scale = maxAbs(ref);
  const large: number[] = [];
  for (let i = 0; i < ref.length; i++) if (scale > 0 && abs(ref[i]) >= 0.1 * scale) large.push(i);
  const chosen: number[] = [];
  for (let tries = 0; chosen.length < count && tries < 100 * count; tries++) {
    const pickLarge = chosen.length % 2 === 1 && large.length > 0;
    const i = pickLarge ? large[r.int(large.length)] : r.int(ref.length);
    if (!chosen.includes(i)) chosen.push(i);
  }
  return chosen;
}

interface Worst {
  native: number;
  reference: number;
}

function relativeError(value: number, fd: number, scale: number): number {
  return Math.abs(value - fd) / Math.max(Math.abs(fd), FLOOR_FRACTION * scale);
}

describe.each(CASES)('finite differences vs the native gradient: $name', ({ name, soft, cfg }) => {
  const images = makeImages(N, 1001, [0]);
  const labels = makeLabels(N, 1001);
  const softTargets = soft ? makeSoftTargets(N, 1001) : null;
  const params = makeParameters(21, { logitScale: 8 });

  let nativeGrad: Float32Array;
  let nativeDinput: Float32Array;
  let p: Params;
  let masks: Masks;
  let base: Activations;
  let refGrad: Params;
  let refDinput: Float64Array;

  beforeAll(async () => {
    const model = native.createModel('cpu', 21);
    try {
      model.setParameters(params);
      const tr = await model.trace(
        images,
        labels,
        softTargets,
        { temperature: cfg.temperature, lossScale: cfg.lossScale, dropoutRate: cfg.dropoutRate, dropoutSeed: cfg.dropoutSeed },
        cfg.step,
      );
      nativeGrad = tr.grad;
      nativeDinput = tr.dinput;
    } finally {
      model.dispose();
    }
    p = splitParameters(params);
    masks = dropoutMasks(N, cfg);
    base = forward(p, images, N, masks);
    const g = backward(p, images, N, masks, base, labels, softTargets, cfg);
    refGrad = g.params;
    refDinput = g.dinput;
  });

  test('parameter gradients (8 coordinates of every tensor)', () => {
    const r = new FixtureRandom(77, cfg.step + 10 * cfg.temperature);
    const failures: string[] = [];
    for (const t of LAYOUT) {
      const nat = nativeGrad.subarray(t.offset, t.offset + t.size);
      const ref = refGrad[t.name];
      const scale = maxAbs(nat);
      const from: Stage = stageOfParameter(t.name);
      const w = p[t.name];
      let checked = 0;
      let tried = 0;
      const worst: Worst = { native: 0, reference: 0 };
      for (const i of candidateCoordinates(ref, MAX_CANDIDATES, r)) {
        if (checked === COORDS_PER_TENSOR) break;
        tried++;
        const original = w[i];
        const fd = centralDifference((delta) => {
          w[i] = original + delta;
          const a = forward(p, images, N, masks, { from, activations: base });
          w[i] = original;
          return { loss: objective(a, N, labels, softTargets, cfg), a };
        });
        if (fd === null) continue;
        checked++;
        const eNative = relativeError(nat[i], fd, scale);
        const eRef = relativeError(ref[i], fd, scale);
        worst.native = Math.max(worst.native, eNative);
        worst.reference = Math.max(worst.reference, eRef);
        if (!(eNative < REL_TOL_NATIVE)) {
          failures.push(
            `${t.name}[${i}]: native ${nat[i]} vs finite difference ${fd} (relative error ${eNative.toExponential(2)}, scale ${scale.toExponential(2)})`,
          );
        }
        if (!(eRef < REL_TOL_REFERENCE)) {
          failures.push(`${t.name}[${i}]: REFERENCE ${ref[i]} vs finite difference ${fd} (relative error ${eRef.toExponential(2)})`);
        }
      }
      if (checked < MIN_CHECKED_PER_TENSOR) failures.push(`${t.name}: only ${checked} coordinates away from kinks`);
      report.push(
        `${name.padEnd(38)} ${t.name.padEnd(14)} checked ${checked}/${tried}  native ${worst.native.toExponential(2)}  reference ${worst.reference.toExponential(2)}  scale ${scale.toExponential(2)}`,
      );
    }
    if (failures.length > 0) throw new Error(`${name}:\n${failures.join('\n')}`);
  });

  test('input gradient (20 pixels)', () => {
    const r = new FixtureRandom(78, cfg.step + 10 * cfg.temperature);
    const x = Float64Array.from(images);
    const scale = maxAbs(nativeDinput);
    const failures: string[] = [];
    let checked = 0;
    let tried = 0;
    const worst: Worst = { native: 0, reference: 0 };
    const candidates = new Set<number>();
    while (candidates.size < MAX_PIXEL_CANDIDATES) candidates.add(r.int(x.length));
    for (const i of candidates) {
      if (checked === PIXELS) break;
      tried++;
      const original = x[i];
      const fd = centralDifference((delta) => {
        x[i] = original + delta;
        const a = forward(p, x, N, masks);
        x[i] = original;
        return { loss: objective(a, N, labels, softTargets, cfg), a };
      });
      if (fd === null) continue;
      checked++;
      const eNative = relativeError(nativeDinput[i], fd, scale);
      const eRef = relativeError(refDinput[i], fd, scale);
      worst.native = Math.max(worst.native, eNative);
      worst.reference = Math.max(worst.reference, eRef);
      const where = `sample ${Math.floor(i / 784)} pixel (${Math.floor((i % 784) / 28)}, ${i % 28})`;
      if (!(eNative < REL_TOL_NATIVE)) {
        failures.push(
          `dinput ${where}: native ${nativeDinput[i]} vs finite difference ${fd} (relative error ${eNative.toExponential(2)}, scale ${scale.toExponential(2)})`,
        );
      }
      if (!(eRef < REL_TOL_REFERENCE)) {
        failures.push(`dinput ${where}: REFERENCE ${refDinput[i]} vs finite difference ${fd} (relative error ${eRef.toExponential(2)})`);
      }
    }
    if (checked < MIN_CHECKED_PIXELS) failures.push(`dinput: only ${checked} pixels away from kinks`);
    report.push(
      `${name.padEnd(38)} ${'dinput'.padEnd(14)} checked ${checked}/${tried}  native ${worst.native.toExponential(2)}  reference ${worst.reference.toExponential(2)}  scale ${scale.toExponential(2)}`,
    );
    if (failures.length > 0) throw new Error(`${name}:\n${failures.join('\n')}`);
  });
});
