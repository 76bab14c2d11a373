// The Square attack and Carlini-Wagner L2 against their float64 TypeScript references
// (test/reference/square.ts, test/reference/cw-l2.ts, on the spec-built float64 network of
// test/reference/arch-network.ts with the model's own weights), on tiny specs; their
// invariants (inside the ball and the box, success really misclassified, deterministic,
// independent of batching); refusals of nonsense before any work; the registry path on the
// paper's network.
import type { ArchSpec } from '../lib/arch';
import { ATTACKS, runAttack } from '../lib/attack';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model, argmax } from '../lib/model';
import { briefModels } from './attack-models';
import { caughtAsync, expectError } from './helpers';
import { referenceLogits, referenceLogitVjp } from './reference/arch-network';
import { CwOracle, cwImage, cwObjective, cwStart, referenceAdamStep, referenceCwL2, referenceNextConst } from './reference/cw-l2';
import { FixtureRandom } from './reference/rng';
import { referenceFraction, referenceSide, referenceSquare } from './reference/square';

const GREY: ArchSpec = {
  input: { channels: 1, height: 6, width: 6 },
  layers: [{ type: 'conv', filters: 4, kernel: 3 }, { type: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 3 }],
};
// Three channels, a non-square image, four classes.
const COLOUR: ArchSpec = {
  input: { channels: 3, height: 5, width: 7 },
  layers: [{ type: 'conv', filters: 3, kernel: 3 }, { type: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 4 }],
};
// A linear model: its smallest L2 perturbation without the box is known in closed form.
const LINEAR: ArchSpec = {
  input: { channels: 1, height: 6, width: 6 },
  layers: [{ type: 'flatten' }, { type: 'dense', units: 3 }],
};

interface Tiny {
  model: Model;
  spec: ArchSpec;
  params: Map<string, Float32Array>;
  size: number;
  images: Float32Array;
  /** The model's own predictions, so that every sample is attacked. */
  labels: Int32Array;
  n: number;
}

async function tiny(spec: ArchSpec, seed: number, n: number, lo = 0, hi = 1): Promise<Tiny> {
  const model = Model.create({ seed, arch: spec, backend: 'cpu' });
  const params = new Map<string, Float32Array>();
  const flat = model.getParameters();
  for (const p of model.nativeModel.plan().parameters) params.set(p.name, flat.subarray(p.offset, p.offset + p.size));
  const size = spec.input.channels * spec.input.height * spec.input.width;
  const rng = new FixtureRandom(seed, 3);
  const images = Float32Array.from({ length: n * size }, () => Math.fround(rng.uniform(lo, hi)));
  const z = await model.predict(images);
  const classes = z.length / n;
  const labels = Int32Array.from({ length: n }, (_, i) => argmax(z, i * classes, classes));
  return { model, spec, params, size, images, labels, n };
}

const row = (t: Tiny, i: number) => t.images.slice(i * t.size, (i + 1) * t.size);
const keysOf = (n: number, first = 0) => Uint32Array.from({ length: n }, (_, i) => first + i);
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function logitsScale(t: Tiny): number {
  const z = referenceLogits(t.spec, t.params, t.images, t.n);
  return Math.max(...Array.from(z, Math.abs));
}

describe('Square', () => {
  test('the schedule of p and the side of the square', () => {
    // 10,000 queries: p_init up to iteration 10, halved after each checkpoint.
    expect([0, 10, 11, 50, 51, 200, 201, 9999].map((it) => referenceFraction(0.8, it, 10000))).toEqual([
      0.8,
      0.8,
      0.4,
      0.4,
      0.2,
      0.2,
      0.1,
      0.8 / 512,
    ]);
    // Rescaled: at 5,000 queries iteration 6 is the 12th of 10,000.
    expect(referenceFraction(0.8, 5, 5000)).toBe(0.8);
    expect(referenceFraction(0.8, 6, 5000)).toBe(0.4);
    expect(referenceSide(0.8, 28, 28)).toBe(25); // round(sqrt(627.2))
    expect(referenceSide(0.8 / 512, 28, 28)).toBe(1);
    expect(referenceSide(1, 6, 6)).toBe(5); // at most min(h, w) - 1
    expect(referenceSide(1, 5, 7)).toBe(4);
  });

  const cases: [string, ArchSpec, number, number][] = [
    ['1x6x6, 3 classes', GREY, 11, 0.08],
    ['3x5x7, 4 classes', COLOUR, 12, 0.06],
  ];
  test.each(cases)('decision by decision against the float64 reference (%s)', async (_name, spec, seed, epsilon) => {
    const t = await tiny(spec, seed, 24);
    const o = { epsilon, queries: 300, pInit: 0.8, seed: 5 };
    const r = await t.model.nativeModel.square(t.images, t.labels, keysOf(t.n, 100), o);
    const shape = { h: spec.input.height, w: spec.input.width, c: spec.input.channels };
    const oracle = (image: Float32Array) => referenceLogits(spec, t.params, image, 1);
    const tie = 2e-6 * logitsScale(t);
    let compared = 0;
    let successes = 0;
    for (let i = 0; i < t.n; i++) {
      expect(r.attacked[i]).toBe(1);
      const ref = referenceSquare(oracle, row(t, i), t.labels[i], 100 + i, shape, o);
      if (ref.gaps.some((g) => g < tie)) continue; // a decision float32 rounding could flip
      compared++;
      successes += ref.success ? 1 : 0;
      expect([r.success[i] === 1, r.iterations[i], r.finalPrediction[i]]).toEqual([ref.success, ref.queries, ref.prediction]);
      expect(bits(r.adversarial.slice(i * t.size, (i + 1) * t.size)).equals(bits(ref.image))).toBe(true);
    }
    expect(compared).toBeGreaterThanOrEqual(t.n * 0.75);
    expect(successes).toBeGreaterThan(0); // both the success stop and the budget stop are exercised
    expect(successes).toBeLessThan(compared);
  });

  test('inside the ball and the box; a success is misclassified by predict; deterministic; independent of batching', async () => {
    const t = await tiny(COLOUR, 13, 20);
    const o = { epsilon: 0.07, queries: 200, pInit: 0.5, seed: 9 };
    const all = await t.model.nativeModel.square(t.images, t.labels, keysOf(t.n), o);
    const again = await t.model.nativeModel.square(t.images, t.labels, keysOf(t.n), o);
    expect(bits(again.adversarial).equals(bits(all.adversarial))).toBe(true);
    const half = t.n / 2;
    const parts = [
      await t.model.nativeModel.square(t.images.subarray(0, half * t.size), t.labels.subarray(0, half), keysOf(half), o),
      await t.model.nativeModel.square(t.images.subarray(half * t.size), t.labels.subarray(half), keysOf(half, half), o),
    ];
    expect(bits(Float32Array.of(...parts[0].adversarial, ...parts[1].adversarial)).equals(bits(all.adversarial))).toBe(true);
    expect([...parts[0].iterations, ...parts[1].iterations]).toEqual([...all.iterations]);
    const other = await t.model.nativeModel.square(t.images, t.labels, keysOf(t.n), { ...o, seed: 10 });
    expect(bits(other.adversarial).equals(bits(all.adversarial))).toBe(false);
    const z = await t.model.predict(all.adversarial);
    const classes = z.length / t.n;
    for (let i = 0; i < t.n; i++) {
      const p = argmax(z, i * classes, classes);
      expect(p).toBe(all.finalPrediction[i]);
      expect(p !== t.labels[i]).toBe(all.success[i] === 1);
      expect(all.iterations[i]).toBeGreaterThanOrEqual(1);
      expect(all.iterations[i]).toBeLessThanOrEqual(o.queries);
      if (!all.success[i]) expect(all.iterations[i]).toBe(o.queries);
      expect(all.linf[i]).toBeLessThanOrEqual(Math.fround(o.epsilon) + 2 ** -24);
      for (let p2 = 0; p2 < t.size; p2++) {
        const v = all.adversarial[i * t.size + p2];
        expect(v >= 0 && v <= 1).toBe(true);
      }
    }
    expect(all.success.some((s) => s === 1)).toBe(true);
  });
});

function cwOracle(t: Tiny): CwOracle {
  return {
    vjp: (image, seed) => {
      const r = referenceLogitVjp(t.spec, t.params, image, 1, seed);
      return { z: r.logits, dx: r.dinput };
    },
  };
}

describe('Carlini-Wagner L2', () => {
  test('the binary search over c on scripted outcomes', () => {
    let s = { lower: 0, upper: 1e10, c: 1e-3 };
    const cs: number[] = [];
    for (const ok of [false, false, true, false, true, true]) {
      cs.push(s.c);
      s = referenceNextConst(ok, s);
    }
    cs.push(s.c);
    const expected = [1e-3, 1e-2, 1e-1, 0.055, 0.0775, 0.06625, 0.060625];
    cs.forEach((c, k) => expect(c).toBeCloseTo(expected[k], 12));
  });

  test("the reference's gradient against central differences of its objective", async () => {
    const t = await tiny(GREY, 21, 3, 0.1, 0.9);
    const oracle = cwOracle(t);
    for (let i = 0; i < t.n; i++) {
      const x = row(t, i);
      const rng = new FixtureRandom(i, 9);
      const w = Float64Array.from(x, (v) => cwStart(v) + rng.uniform(-0.3, 0.3));
      for (const [c, kappa] of [
        [0.5, 0],
        [3, 0.2],
      ]) {
        const f = cwObjective(oracle, w, x, t.labels[i], c, kappa, false);
        const h = 1e-6;
        let worst = 0;
        const scale = Math.max(...Array.from(f.grad, Math.abs));
        for (let p = 0; p < w.length; p++) {
          const up = Float64Array.from(w);
          const down = Float64Array.from(w);
          up[p] += h;
          down[p] -= h;
          const fd =
            (cwObjective(oracle, up, x, t.labels[i], c, kappa, false).value -
              cwObjective(oracle, down, x, t.labels[i], c, kappa, false).value) /
            (2 * h);
          worst = Math.max(worst, Math.abs(fd - f.grad[p]) / scale);
        }
        expect(worst).toBeLessThan(1e-5);
      }
    }
  });

  test("Adam's step (Kingma & Ba) by hand", () => {
    const w = Float64Array.of(0.5, -1);
    const m = new Float64Array(2);
    const v = new Float64Array(2);
    referenceAdamStep(w, m, v, [2, -0.001], 1, 0.01);
    // The first step is lr * g / (|g| + 1e-8).
    expect(w[0]).toBeCloseTo(0.5 - 0.01 * (2 / (2 + 1e-8)), 14);
    expect(w[1]).toBeCloseTo(-1 + 0.01 * (0.001 / (0.001 + 1e-8)), 14);
    referenceAdamStep(w, m, v, [1, 0], 2, 0.01);
    const m2 = 0.9 * 0.2 + 0.1 * 1;
    const v2 = 0.999 * 0.004 + 0.001 * 1;
    expect(w[0]).toBeCloseTo(0.5 - 0.01 * (2 / (2 + 1e-8)) - (0.01 * (m2 / 0.19)) / (Math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8), 12);
  });

  const cases: [string, ArchSpec, number][] = [
    ['1x6x6, 3 classes', GREY, 31],
    ['3x5x7, 4 classes', COLOUR, 32],
  ];
  test.each(cases)('whole runs against the float64 reference: constants, outcomes, best image and L2 (%s)', async (_name, spec, seed) => {
    const t = await tiny(spec, seed, 8);
    const o = { steps: 40, searchSteps: 4, learningRate: 0.05, initialConst: 0.3, confidence: 0.1 };
    const r = await t.model.nativeModel.cwL2(t.images, t.labels, o);
    const oracle = cwOracle(t);
    let identical = 0;
    let successes = 0;
    for (let i = 0; i < t.n; i++) {
      const ref = referenceCwL2(oracle, row(t, i), t.labels[i], o);
      const native = {
        consts: Array.from(r.consts.subarray(i * o.searchSteps, (i + 1) * o.searchSteps)),
        roundSuccess: Array.from(r.roundSuccess.subarray(i * o.searchSteps, (i + 1) * o.searchSteps), (b) => b === 1),
      };
      // The native constants follow the published rule on the native outcomes, whatever they are.
      let s = { lower: 0, upper: 1e10, c: o.initialConst };
      for (let k = 0; k < o.searchSteps; k++) {
        expect(native.consts[k]).toBe(s.c);
        s = referenceNextConst(native.roundSuccess[k], s);
      }
      if (r.success[i]) successes++;
      if (native.roundSuccess.join() !== ref.roundSuccess.join() || r.iterations[i] !== ref.evaluation) continue; // a near tie
      identical++;
      expect(r.success[i] === 1).toBe(ref.success);
      expect(r.l2[i]).toBeCloseTo(ref.l2, 3);
      const image = r.adversarial.subarray(i * t.size, (i + 1) * t.size);
      for (let p = 0; p < t.size; p++) expect(Math.abs(image[p] - ref.image[p])).toBeLessThan(2e-3);
    }
    expect(identical).toBeGreaterThanOrEqual(t.n - 1);
    expect(successes).toBeGreaterThan(0);
  });

  test('on a linear model the best L2 is no smaller than the exact minimum without the box, and close to it', async () => {
    const t = await tiny(LINEAR, 41, 8, 0.3, 0.7);
    const r = await t.model.nativeModel.cwL2(t.images, t.labels, {
      steps: 300,
      searchSteps: 9,
      learningRate: 0.01,
      initialConst: 1,
      confidence: 0,
    });
    const weight = t.params.get('fc1.weight')!;
    const classes = 3;
    const z = referenceLogits(t.spec, t.params, t.images, t.n);
    for (let i = 0; i < t.n; i++) {
      const y = t.labels[i];
      // The nearest decision boundary z_y = z_j: (z_y - z_j) / ||w_y - w_j||.
      let exact = Infinity;
      for (let j = 0; j < classes; j++) {
        if (j === y) continue;
        let sq = 0;
        for (let p = 0; p < t.size; p++) sq += (weight[y * t.size + p] - weight[j * t.size + p]) ** 2;
        exact = Math.min(exact, (z[i * classes + y] - z[i * classes + j]) / Math.sqrt(sq));
      }
      expect(r.success[i]).toBe(1);
      expect(r.l2[i]).toBeGreaterThanOrEqual(exact * (1 - 1e-4));
      expect(r.l2[i]).toBeLessThanOrEqual(exact * 1.05 + 0.01);
    }
  });

  test('a success is misclassified by predict, with its L2 and linf; deterministic; independent of batching', async () => {
    const t = await tiny(COLOUR, 51, 10);
    const o = { steps: 30, searchSteps: 3, learningRate: 0.05, initialConst: 1, confidence: 0 };
    const all = await t.model.nativeModel.cwL2(t.images, t.labels, o);
    const again = await t.model.nativeModel.cwL2(t.images, t.labels, o);
    expect(bits(again.adversarial).equals(bits(all.adversarial))).toBe(true);
    const half = t.n / 2;
    const first = await t.model.nativeModel.cwL2(t.images.subarray(0, half * t.size), t.labels.subarray(0, half), o);
    const second = await t.model.nativeModel.cwL2(t.images.subarray(half * t.size), t.labels.subarray(half), o);
    expect(bits(Float32Array.of(...first.adversarial, ...second.adversarial)).equals(bits(all.adversarial))).toBe(true);
    expect([...first.l2, ...second.l2]).toEqual([...all.l2]);
    const z = await t.model.predict(all.adversarial);
    const classes = z.length / t.n;
    for (let i = 0; i < t.n; i++) {
      const x = row(t, i);
      const adv = all.adversarial.subarray(i * t.size, (i + 1) * t.size);
      let sq = 0;
      let linf = 0;
      for (let p = 0; p < t.size; p++) {
        expect(adv[p] >= 0 && adv[p] <= 1).toBe(true);
        sq += (adv[p] - x[p]) ** 2;
        linf = Math.max(linf, Math.abs(adv[p] - x[p]));
      }
      expect(all.l2[i]).toBeCloseTo(Math.sqrt(sq), 9);
      expect(all.linf[i]).toBeCloseTo(linf, 6);
      expect(argmax(z, i * classes, classes) !== t.labels[i]).toBe(all.success[i] === 1);
      if (!all.success[i]) expect([all.l2[i], all.iterations[i]]).toEqual([0, 0]);
    }
    expect(all.success.some((s) => s === 1)).toBe(true);
  });

  test('x(w_0) is the image within 1e-6', () => {
    for (const x of [0, 0.25, 0.5, 1]) expect(Math.abs(cwImage(cwStart(x)) - x)).toBeLessThan(1e-6);
  });
});

describe('the registry, the paper network and refusals', () => {
  let data: MnistData;
  let std: Model;
  beforeAll(async () => {
    data = await loadMnist();
    ({ std } = await briefModels(data));
  });

  test('square and cw-l2 through runAttack on the paper network: records, summaries, real misclassifications', async () => {
    const sq = await runAttack(std, 'square', { data, samples: 12, seed: 2, queries: 300 });
    expect(sq.summary).toMatchObject({ algorithm: 'square', budgetUnit: 'queries', budget: 300, epsilon: 0.3, queries: 300, pInit: 0.8 });
    const cw = await runAttack(std, 'cw-l2', { data, samples: 6, seed: 2, steps: 60, searchSteps: 3, initialConst: 1 });
    expect(cw.summary).toMatchObject({ algorithm: 'cw-l2', budgetUnit: 'steps', budget: 180, searchSteps: 3, confidence: 0 });
    for (const r of [sq, cw]) {
      const wins = r.records.filter((x) => x.attacked && x.success);
      expect(wins.length).toBeGreaterThan(0);
      const predicted = await std.classify(Float32Array.from(wins.flatMap((x) => Array.from(x.adversarial))));
      wins.forEach((x, k) => expect(predicted[k]).not.toBe(x.label));
    }
    // x + eps rounded to float32 can lie half an ulp beyond eps.
    for (const x of sq.records.filter((x) => x.attacked)) expect(x.linf!).toBeLessThanOrEqual(Math.fround(0.3) + 2 ** -24);
    const l2 = cw.records.filter((x) => x.success).map((x) => x.l2!);
    expect(cw.summary.meanL2).toBeCloseTo(l2.reduce((a, b) => a + b, 0) / l2.length, 12);
    expect(cw.summary.medianL2).toBeDefined();
    expect(sq.summary.meanQueries).toBeGreaterThanOrEqual(1);
  });

  test('both are in the registry with their references', () => {
    for (const name of ['square', 'cw-l2']) expect(ATTACKS.find((a) => a.name === name)?.testedAgainst).toMatch(/reference/);
  });

  const refusals: [string, () => Promise<unknown>, string, RegExp][] = [
    ['queries 0', () => runAttack(std, 'square', { data, queries: 0 }), 'TEMPERED_OUT_OF_RANGE', /queries/],
    ['queries 10^6 + 1', () => runAttack(std, 'square', { data, queries: 1e6 + 1 }), 'TEMPERED_OUT_OF_RANGE', /queries/],
    ['pInit 0', () => runAttack(std, 'square', { data, pInit: 0 }), 'TEMPERED_OUT_OF_RANGE', /pInit/],
    ['pInit 1.5', () => runAttack(std, 'square', { data, pInit: 1.5 }), 'TEMPERED_OUT_OF_RANGE', /pInit/],
    ['square eps 0', () => runAttack(std, 'square', { data, epsilon: 0 }), 'TEMPERED_OUT_OF_RANGE', /epsilon/],
    ['steps 0', () => runAttack(std, 'cw-l2', { data, steps: 0 }), 'TEMPERED_OUT_OF_RANGE', /steps/],
    ['searchSteps 101', () => runAttack(std, 'cw-l2', { data, searchSteps: 101 }), 'TEMPERED_OUT_OF_RANGE', /searchSteps/],
    ['learningRate 0', () => runAttack(std, 'cw-l2', { data, learningRate: 0 }), 'TEMPERED_OUT_OF_RANGE', /learningRate/],
    ['initialConst -1', () => runAttack(std, 'cw-l2', { data, initialConst: -1 }), 'TEMPERED_OUT_OF_RANGE', /initialConst/],
    ['confidence -0.1', () => runAttack(std, 'cw-l2', { data, confidence: -0.1 }), 'TEMPERED_OUT_OF_RANGE', /confidence/],
    ['confidence NaN', () => runAttack(std, 'cw-l2', { data, confidence: NaN }), 'TEMPERED_NOT_FINITE', /confidence/],
    // @ts-expect-error -- the types refuse it too
    ['epsilon for cw-l2', () => runAttack(std, 'cw-l2', { data, epsilon: 0.3 }), 'TEMPERED_OUT_OF_RANGE', /epsilon.*cw-l2/],
    // @ts-expect-error -- the types refuse it too
    ['queries for pgd', () => runAttack(std, 'pgd', { data, queries: 10 }), 'TEMPERED_OUT_OF_RANGE', /queries.*pgd/],
  ];
  test.each(refusals)('refused with a code before any work: %s', async (_name, fn, code, message) => {
    let progressed = false;
    const e = await caughtAsync(async () => {
      await fn();
      progressed = true;
    });
    expectError(e, 'RangeError', code, message);
    expect(progressed).toBe(false);
  });

  test('the native entries refuse what they are given, with codes, and never throw', async () => {
    const m = std.nativeModel;
    const img = new Float32Array(784);
    const one = Int32Array.of(1);
    const key = Uint32Array.of(0);
    const cases: [Promise<unknown>, RegExp][] = [
      [m.square(img, one, key, { epsilon: 0.3, queries: 0 }), /queries/],
      [m.square(img, one, key, { epsilon: 0.3, queries: 1e6 + 1 }), /queries/],
      [m.square(img, one, key, { epsilon: 0.3, pInit: 0 }), /pInit/],
      [m.square(img, one, key, { epsilon: 0.3, pInit: 1.01 }), /pInit/],
      [m.square(img, one, key, { epsilon: 1.5 }), /epsilon/],
      [m.square(img, one, new Uint32Array(2), { epsilon: 0.3 }), /keys must have length 1/],
      [m.cwL2(img, one, { steps: 0 }), /steps/],
      [m.cwL2(img, one, { steps: 100001 }), /steps/],
      [m.cwL2(img, one, { searchSteps: 0 }), /searchSteps/],
      [m.cwL2(img, one, { learningRate: 0 }), /learningRate/],
      [m.cwL2(img, one, { initialConst: 0 }), /initialConst/],
      [m.cwL2(img, one, { confidence: -1 }), /confidence/],
      [m.cwL2(img, Int32Array.of(10), {}), /labels\[0\]/],
    ];
    for (const [p, message] of cases) {
      const e = await caughtAsync(() => p);
      expect(e.message).toMatch(message);
      expect(e.code).toMatch(/^TEMPERED_/);
    }
  });
});
