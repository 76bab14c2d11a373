// APGD (apgd-ce, apgd-dlr, apgd-t) against the independent float64 reference of
// test/reference/apgd.ts on small specs built by test/reference/arch-network.ts with the
// native model's weights: the checkpoints and step-size decisions on scripted losses, the DLR
// losses and their input gradients (and central differences), whole runs; then determinism,
// chunking, refusals before any work, and on the paper's network: every success really
// misclassified within the ball, and the masking a float32 cross-entropy shows.
import type { ArchSpec } from '../lib/arch';
import { ATTACKS, runAttack } from '../lib/attack';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { native } from '../lib/native';
import { Random } from '../lib/rng';
import { briefModels } from './attack-models';
import { caughtAsync, expectError } from './helpers';
import { ApgdOracle, referenceApgd, referenceCheckpoints, referenceDlr, referenceSchedule } from './reference/apgd';
import { referenceLogitGradients } from './reference/arch-network';

type Kind = 'ce' | 'dlr' | 'dlr-targeted';

const TINY: ArchSpec = {
  input: { channels: 1, height: 6, width: 6 },
  layers: [{ type: 'conv', filters: 3 }, { type: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 4 }],
};
// Three channels, same padding, a pool and a hidden layer: CIFAR-like in miniature.
const COLOUR: ArchSpec = {
  input: { channels: 3, height: 8, width: 8 },
  layers: [
    { type: 'conv', filters: 4, padding: 'same' },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'conv', filters: 4 },
    { type: 'relu' },
    { type: 'flatten' },
    { type: 'dense', units: 8 },
    { type: 'relu' },
    { type: 'dense', units: 5 },
  ],
};

function paramsOf(model: Model): Map<string, Float32Array> {
  const flat = model.getParameters();
  const m = new Map<string, Float32Array>();
  for (const p of model.nativeModel.plan().parameters) m.set(p.name, flat.subarray(p.offset, p.offset + p.size));
  return m;
}

function imagesFor(spec: ArchSpec, n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const x = new Float32Array(n * spec.input.channels * spec.input.height * spec.input.width);
  for (let i = 0; i < x.length; i++) {
    const u = rng.next();
    x[i] = u < 0.15 ? 0 : u > 0.9 ? 1 : Math.fround(rng.next());
  }
  return x;
}

function argmax(z: ArrayLike<number>, at = 0, classes = z.length): number {
  let b = 0;
  for (let k = 1; k < classes; k++) if (z[at + k] > z[at + b]) b = k;
  return b;
}

/** The float64 loss of `kind` for one sample of the spec-built network, by the reference. */
function oracleFor(spec: ArchSpec, params: Map<string, Float32Array>, label: number, kind: Kind, temperature = 1): ApgdOracle {
  return (x, target) => {
    let loss = 0;
    const { logits, gradients } = referenceLogitGradients(spec, params, x, (z) => {
      if (kind !== 'ce') {
        const r = referenceDlr(z, label, kind === 'dlr-targeted' ? target : undefined);
        loss = r.loss;
        return r.dz;
      }
      const s = Array.from(z, (v) => v / temperature);
      const m = Math.max(...s);
      const sum = s.reduce((a, v) => a + Math.exp(v - m), 0);
      loss = m + Math.log(sum) - s[label];
      return Float64Array.from(s, (v, k) => (Math.exp(v - m) / sum - (k === label ? 1 : 0)) / temperature);
    });
    return { loss, gradient: gradients, logits };
  };
}

describe('the step-size schedule', () => {
  test('checkpoints: the published ones at N = 100, and the reference recurrence for N = 1..400 and large N', () => {
    expect(Array.from(native.apgdSchedule(100, new Float64Array(1)).checkpoints)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    for (const n of [...Array.from({ length: 400 }, (_, k) => k + 1), 1000, 4567, 100000])
      expect([n, Array.from(native.apgdSchedule(n, new Float64Array(1)).checkpoints)]).toEqual([n, referenceCheckpoints(n)]);
    expect(referenceCheckpoints(1)).toEqual([]);
    expect(referenceCheckpoints(5)).toEqual([2, 3, 4]); // ceil(1.1), ceil(2.05), ceil(2.85) = 3 once, ...
  });

  test('decisions on scripted losses equal the reference (plateaus, rises, falls, random walks)', () => {
    const rng = new Random(77);
    const scripts: [string, number, number[]][] = [];
    const N = 60;
    scripts.push(['constant', N, new Array(N + 1).fill(1)]);
    scripts.push(['rising', N, Array.from({ length: N + 1 }, (_, j) => j)]);
    scripts.push(['falling', N, Array.from({ length: N + 1 }, (_, j) => -j)]);
    scripts.push(['rise then plateau', N, Array.from({ length: N + 1 }, (_, j) => Math.min(j, 20))]);
    for (let k = 0; k < 40; k++) {
      const n = 5 + rng.int(150);
      const losses = [rng.next()];
      for (let j = 1; j <= n; j++) losses.push(rng.next() < 0.2 ? losses[j - 1] : losses[j - 1] + (rng.next() - 0.45) * 0.1);
      scripts.push([`walk ${k}`, n, losses]);
    }
    let halvings = 0;
    for (const [name, n, losses] of scripts) {
      const got = native.apgdSchedule(n, Float64Array.from(losses));
      const want = referenceSchedule(n, losses);
      expect([name, Array.from(got.newMax, Boolean), Array.from(got.halve, Boolean)]).toEqual([name, want.newMax, want.halve]);
      halvings += want.halve.filter(Boolean).length;
    }
    expect(halvings).toBeGreaterThan(20);
    // By hand: a constant loss never rises (condition 1) at every checkpoint; a rising one never halves.
    const flat = native.apgdSchedule(100, new Float64Array(101).fill(2));
    expect([...flat.halve.keys()].filter((j) => flat.halve[j])).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    expect(
      native
        .apgdSchedule(
          100,
          Float64Array.from({ length: 101 }, (_, j) => j),
        )
        .halve.every((h) => h === 0),
    ).toBe(true);
    // Condition 2: rises at 80% of the steps of the first window, but not above f(x^0).
    const down = Float64Array.from({ length: 23 }, (_, j) => (j === 0 ? 100 : j % 5 === 0 ? 0 : j));
    expect(native.apgdSchedule(100, down).halve[22]).toBe(1);
    expect(referenceSchedule(100, Array.from(down)).halve[22]).toBe(true);
  });
});

describe('the DLR losses and their input gradients', () => {
  test.each([
    ['tiny', TINY],
    ['colour', COLOUR],
  ] as const)('%s spec: loss and gradient equal the float64 reference and central differences', async (_name, spec) => {
    const model = Model.create({ seed: 11, arch: spec, backend: 'cpu' });
    const params = paramsOf(model);
    const n = 4;
    const size = model.inputSize;
    const images = imagesFor(spec, n, 3);
    const z = await model.predict(images);
    const classes = model.classes;
    const labels = Int32Array.from({ length: n }, (_, i) => argmax(z, i * classes, classes));
    const targets = Int32Array.from({ length: n }, (_, i) => (labels[i] + 1 + i) % classes);
    for (const kind of ['dlr', 'dlr-targeted'] as const) {
      const got = await model.nativeModel.apgdLoss(images, labels, targets, { loss: kind });
      for (let i = 0; i < n; i++) {
        const x = images.slice(i * size, (i + 1) * size);
        const t = kind === 'dlr-targeted' ? targets[i] : undefined;
        const ref = oracleFor(spec, params, labels[i], kind)(x, t);
        expect(Math.abs(got.loss[i] - ref.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ref.loss)));
        const g = got.gradient.subarray(i * size, (i + 1) * size);
        const scale = Math.max(1e-12, ...Array.from(ref.gradient, Math.abs));
        for (let p = 0; p < size; p++) expect(Math.abs(g[p] - ref.gradient[p])).toBeLessThan(1e-4 * scale);
        // dDLR/dz against central differences of the reference loss on the logits.
        const { dz } = referenceDlr(ref.logits, labels[i], t);
        for (let k = 0; k < classes; k++) {
          const h = 1e-6;
          const up = Float64Array.from(ref.logits);
          const down = Float64Array.from(ref.logits);
          up[k] += h;
          down[k] -= h;
          const fd = (referenceDlr(up, labels[i], t).loss - referenceDlr(down, labels[i], t).loss) / (2 * h);
          expect(Math.abs(fd - dz[k])).toBeLessThan(1e-5 * Math.max(1, Math.abs(dz[k])));
        }
        // The input gradient against central differences of the float64 loss, on a few pixels.
        const loss = (v: Float32Array) => oracleFor(spec, params, labels[i], kind)(v, t).loss;
        for (const p of [0, 7, Math.floor(size / 2), size - 1]) {
          const h = 1e-4;
          const up = Float64Array.from(x);
          const down = Float64Array.from(x);
          up[p] += h;
          down[p] -= h;
          // Float32Array inputs round; the oracle takes any numbers through referenceLogitGradients.
          const fd = (loss(up as unknown as Float32Array) - loss(down as unknown as Float32Array)) / (2 * h);
          expect(Math.abs(fd - ref.gradient[p])).toBeLessThan(1e-5 * scale + 1e-4 * Math.abs(fd));
        }
      }
    }
  });

  test('scale invariance: DLR of the logits x 40 equals DLR of the logits', () => {
    const z = [3.1, -0.4, 1.7, 0.2];
    const big = z.map((v) => v * 40);
    expect(referenceDlr(big, 0).loss).toBeCloseTo(referenceDlr(z, 0).loss, 12);
    expect(referenceDlr(big, 0, 2).loss).toBeCloseTo(referenceDlr(z, 0, 2).loss, 12);
  });
});

describe('whole runs equal the reference', () => {
  const cases: ['tiny' | 'colour', Kind, number, number][] = [
    ['tiny', 'ce', 0.06, 30],
    ['tiny', 'dlr', 0.06, 30],
    ['tiny', 'dlr-targeted', 0.04, 20],
    ['colour', 'dlr', 0.03, 25],
    ['colour', 'dlr-targeted', 0.02, 12],
  ];
  test.each(cases)('%s spec, %s, eps %d, %d steps, 2 restarts', async (name, kind, epsilon, steps) => {
    const spec = name === 'tiny' ? TINY : COLOUR;
    const model = Model.create({ seed: 5, arch: spec, backend: 'cpu' });
    const params = paramsOf(model);
    const n = 10;
    const size = model.inputSize;
    const images = imagesFor(spec, n, 21);
    const z = await model.predict(images);
    const classes = model.classes;
    // Labels: the clean predictions, so that every sample is attacked (but one, mislabelled).
    const labels = Int32Array.from({ length: n }, (_, i) => argmax(z, i * classes, classes));
    labels[n - 1] = (labels[n - 1] + 1) % classes;
    const keys = Uint32Array.from({ length: n }, (_, i) => 100 + i);
    const seed = 4;
    const targetClasses = kind === 'dlr-targeted' ? 2 : undefined;
    const r = await model.nativeModel.apgd(images, labels, keys, {
      loss: kind,
      epsilon,
      steps,
      restarts: 2,
      seed,
      ...(kind === 'ce' ? { precision: 'float64' as const } : {}),
      ...(targetClasses ? { targetClasses } : {}),
    });
    let identical = 0;
    let explained = 0;
    for (let i = 0; i < n; i++) {
      const x = images.slice(i * size, (i + 1) * size);
      const ref = referenceApgd(oracleFor(spec, params, labels[i], kind), x, labels[i], {
        epsilon,
        steps,
        restarts: 2,
        seed,
        key: keys[i],
        targetClasses,
      });
      const got = {
        attacked: r.attacked[i] === 1,
        success: r.success[i] === 1,
        steps: r.iterations[i],
        finalPrediction: r.finalPrediction[i],
        saliencyAllZero: r.saliencyZero[i] === 1,
        adversarial: Array.from(r.adversarial.subarray(i * size, (i + 1) * size)),
      };
      const want = {
        attacked: ref.attacked,
        success: ref.success,
        steps: ref.steps,
        finalPrediction: ref.finalPrediction,
        saliencyAllZero: ref.saliencyAllZero,
        adversarial: Array.from(ref.adversarial),
      };
      if (JSON.stringify(got) === JSON.stringify(want)) identical++;
      else {
        // Only an ill-conditioned decision (float32 against float64) may part them.
        expect([i, ref.illConditionedAt !== undefined]).toEqual([i, true]);
        expect(got.steps).toBeGreaterThanOrEqual(Math.min(ref.illConditionedAt!, want.steps));
        explained++;
      }
    }
    expect(r.attacked[n - 1]).toBe(0);
    expect(identical).toBeGreaterThanOrEqual(n - 3);
    expect(identical + explained).toBe(n);
    // Both outcomes occur, so the success stop and the restarts are both exercised.
    const attacked = Array.from(r.attacked).filter(Boolean).length;
    const wins = Array.from(r.success).filter(Boolean).length;
    expect([wins > 0, wins < attacked]).toEqual([true, true]);
  });
});

describe('determinism, chunking, the ball, refusals', () => {
  let data: MnistData;
  let std: Model;
  let hot: Model;
  beforeAll(async () => {
    data = await loadMnist();
    ({ std, hot } = await briefModels(data));
  });

  test('the same seed gives the same records, whatever the chunking; another seed other starts', async () => {
    const base = { data, samples: [0, 1, 2, 3, 4, 5, 6], steps: 12, restarts: 2, epsilon: 0.1, seed: 3 };
    const a = await runAttack(std, 'apgd-dlr', { ...base, chunk: 7 });
    const b = await runAttack(std, 'apgd-dlr', { ...base, chunk: 7 });
    const c = await runAttack(std, 'apgd-dlr', { ...base, chunk: 3 });
    const d = await runAttack(std, 'apgd-dlr', { ...base, chunk: 1 });
    const strip = (r: typeof a) => r.records.map((x) => ({ ...x, adversarial: Array.from(x.adversarial) }));
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).toEqual(strip(a));
    expect(strip(d)).toEqual(strip(a));
    const e = await runAttack(std, 'apgd-dlr', { ...base, seed: 4, chunk: 7 });
    expect(strip(e)).not.toEqual(strip(a));
  });

  test.each(['apgd-ce', 'apgd-dlr', 'apgd-t'] as const)(
    '%s on the paper network: a success is misclassified by model.predict, every image in the ball and [0, 1]',
    async (alg) => {
      const steps = alg === 'apgd-t' ? 10 : 25;
      const r = await runAttack(std, alg, {
        data,
        samples: 12,
        seed: 1,
        epsilon: 0.15,
        steps,
        ...(alg === 'apgd-t' ? { targetClasses: 3 } : {}),
      });
      expect(r.summary.budgetUnit).toBe('steps');
      expect(r.summary.budget).toBe(alg === 'apgd-t' ? 30 : 25);
      const eps = Math.fround(0.15);
      const adv = Float32Array.from(r.records.flatMap((x) => Array.from(x.adversarial)));
      const z = await std.predict(adv);
      r.records.forEach((rec, k) => {
        const x = data.test.images.subarray(rec.index * 784, (rec.index + 1) * 784);
        let linf = 0;
        for (let p = 0; p < 784; p++) {
          const v = rec.adversarial[p];
          expect(v).toBeGreaterThanOrEqual(Math.max(Math.fround(x[p] - eps), 0));
          expect(v).toBeLessThanOrEqual(Math.min(Math.fround(x[p] + eps), 1));
          linf = Math.max(linf, Math.abs(v - x[p]));
        }
        expect(rec.linf).toBe(Math.fround(linf));
        if (!rec.attacked) return;
        const predicted = argmax(z, k * 10, 10);
        expect([rec.index, rec.success]).toEqual([rec.index, predicted !== rec.label]);
        expect(rec.finalPrediction).toBe(predicted);
        expect(rec.pixels).toBeLessThanOrEqual(r.summary.budget);
        if (!rec.success) expect(rec.pixels).toBe(r.summary.budget);
      });
      expect(r.summary.successes).toBeGreaterThan(0);
    },
    120000,
  );

  test('a saturated model: the float32 cross-entropy at T = 1 is masked (all-zero gradients), DLR is not', async () => {
    const ce = await runAttack(hot, 'apgd-ce', { data, samples: 8, steps: 20, epsilon: 0.3 });
    const dlr = await runAttack(hot, 'apgd-dlr', { data, samples: 8, steps: 20, epsilon: 0.3 });
    expect(ce.summary.allZeroSaliency).toBeGreaterThan(0);
    expect(dlr.summary.allZeroSaliency).toBe(0);
    expect(dlr.summary.successes).toBeGreaterThan(ce.summary.successes);
    // At the model's own scale (T = 40 undoes the x 40), the cross-entropy is not masked.
    const ceT = await runAttack(hot, 'apgd-ce', { data, samples: 8, steps: 20, epsilon: 0.3, temperature: 40 });
    expect(ceT.summary.allZeroSaliency).toBe(0);
  }, 120000);

  const runs: [string, () => Promise<unknown>, string, RegExp][] = [
    ['steps 0', () => runAttack(std, 'apgd-dlr', { data, steps: 0 }), 'TEMPERED_OUT_OF_RANGE', /steps/],
    ['steps 100001', () => runAttack(std, 'apgd-ce', { data, steps: 100001 }), 'TEMPERED_OUT_OF_RANGE', /steps/],
    ['restarts 0', () => runAttack(std, 'apgd-dlr', { data, restarts: 0 }), 'TEMPERED_OUT_OF_RANGE', /restarts/],
    ['restarts 1.5', () => runAttack(std, 'apgd-t', { data, restarts: 1.5 }), 'TEMPERED_OUT_OF_RANGE', /restarts/],
    ['eps 0', () => runAttack(std, 'apgd-ce', { data, epsilon: 0 }), 'TEMPERED_OUT_OF_RANGE', /epsilon/],
    ['targetClasses 0', () => runAttack(std, 'apgd-t', { data, targetClasses: 0 }), 'TEMPERED_OUT_OF_RANGE', /targetClasses/],
    // @ts-expect-error -- the types refuse it too: DLR takes no temperature
    ['temperature for DLR', () => runAttack(std, 'apgd-dlr', { data, temperature: 2 }), 'TEMPERED_OUT_OF_RANGE', /temperature.*apgd-dlr/],
    // @ts-expect-error -- the types refuse it too: only apgd-t has targets
    ['targets for apgd-ce', () => runAttack(std, 'apgd-ce', { data, targetClasses: 3 }), 'TEMPERED_OUT_OF_RANGE', /targetClasses/],
  ];
  test.each(runs)('runAttack refuses %s before any work', async (_name, fn, code, message) => {
    let progressed = false;
    const e = await caughtAsync(async () => {
      await fn();
      progressed = true;
    });
    expectError(e, 'RangeError', code, message);
    expect(progressed).toBe(false);
  });

  test('the native entry refuses with a code, and rejects (never throws), before any work', async () => {
    const m = std.nativeModel;
    const img = new Float32Array(784);
    const one = Int32Array.of(1);
    const key = Uint32Array.of(0);
    const ok = { loss: 'dlr', epsilon: 0.1, steps: 5 } as const;
    const bad: [object, RegExp][] = [
      [{ ...ok, steps: 0 }, /steps/],
      [{ ...ok, steps: 100001 }, /steps/],
      [{ ...ok, restarts: 0 }, /restarts/],
      [{ ...ok, restarts: 1001 }, /restarts/],
      [{ ...ok, epsilon: 0 }, /epsilon/],
      [{ ...ok, epsilon: 1.5 }, /epsilon/],
      [{ ...ok, loss: 'hinge' }, /loss/],
      [{ ...ok, temperature: 2 }, /temperature/],
      [{ ...ok, targetClasses: 3 }, /targetClasses/],
      [{ ...ok, loss: 'dlr-targeted', targetClasses: 0 }, /targetClasses/],
      [{ ...ok, loss: 'dlr-targeted', targetClasses: 10 }, /targetClasses/],
      [{ ...ok, loss: 'ce', precision: 'float16' }, /precision/],
    ];
    for (const [config, message] of bad) {
      const e = await caughtAsync(() => m.apgd(img, one, key, config as typeof ok));
      expect([JSON.stringify(config), e.code, message.test(e.message)]).toEqual([JSON.stringify(config), 'TEMPERED_OUT_OF_RANGE', true]);
    }
    await expect(m.apgd(img, one, Uint32Array.of(0, 1), ok)).rejects.toThrow(/keys must have length 1/);
    const nan = new Float32Array(784);
    nan[3] = NaN;
    await expect(m.apgd(nan, one, key, ok)).rejects.toThrow(/images\[3\]/);
    // The DLR losses need 3 (targeted: 4) classes.
    const three = Model.create({ seed: 1, arch: { ...TINY, layers: [...TINY.layers.slice(0, -1), { type: 'dense', units: 3 }] } });
    const two = Model.create({ seed: 1, arch: { ...TINY, layers: [...TINY.layers.slice(0, -1), { type: 'dense', units: 2 }] } });
    const small = new Float32Array(36);
    const e2 = await caughtAsync(() => two.nativeModel.apgd(small, one, key, ok));
    expect([e2.code, e2.message]).toEqual(['TEMPERED_OUT_OF_RANGE', expect.stringMatching(/at least 3 classes/)]);
    const e3 = await caughtAsync(() => three.nativeModel.apgd(small, one, key, { ...ok, loss: 'dlr-targeted', targetClasses: 2 }));
    expect([e3.code, e3.message]).toEqual(['TEMPERED_OUT_OF_RANGE', expect.stringMatching(/at least 4 classes/)]);
    // The model is free again after every refusal.
    await expect(m.apgd(img, Int32Array.of(0), key, ok)).resolves.toBeDefined();
  });

  test('the registry lists the three with their options', () => {
    const names = ATTACKS.map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(['apgd-ce', 'apgd-dlr', 'apgd-t']));
    const t = ATTACKS.find((a) => a.name === 'apgd-t')!;
    expect(Object.keys(t.options).sort()).toEqual(['epsilon', 'epsilons', 'restarts', 'steps', 'targetClasses']);
    expect(Object.keys(ATTACKS.find((a) => a.name === 'apgd-ce')!.options).sort()).toEqual([
      'epsilon',
      'epsilons',
      'precision',
      'restarts',
      'steps',
      'temperature',
    ]);
  });

  test('epsilons: one call over several radii, a sample fooled at a radius counted at the larger ones', async () => {
    const r = await runAttack(std, 'apgd-dlr', { data, samples: 6, steps: 10, epsilons: [0.05, 0.2] });
    expect(r.summary.byEpsilon!.map((p) => p.epsilon)).toEqual([0.05, 0.2]);
    expect(r.summary.byEpsilon![1].successes).toBeGreaterThanOrEqual(r.summary.byEpsilon![0].successes);
    for (const rec of r.records) if (rec.attacked) expect([0.05, 0.2]).toContain(rec.epsilon);
  });
});
