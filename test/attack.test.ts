// Algorithms 1-4: the native attack loop (with the incremental sweep) against the
// brute-force TypeScript implementation (full forward passes), sample by sample; the sweep
// against full forward passes; the summaries; and refusals of nonsense.
import type { Model as NativeModel, NativeLossSpec } from '../binding';
import { AttackAlgorithm, runAttack, summarize } from '../lib/attack';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { native } from '../lib/native';
import { wilsonInterval } from '../lib/stats';
import { briefModels } from './attack-models';
import { caughtAsync, expectError } from './helpers';
import { bruteForceAttack } from './reference/attacks';

let data: MnistData;
let std: Model; // briefly trained at T = 1
let hot: Model; // the same with logits x 40: float32 cross-entropy saturates (masking)

beforeAll(async () => {
  data = await loadMnist();
  ({ std, hot } = await briefModels(data));
});

function sample(i: number): { image: Float32Array; label: number } {
  return { image: data.test.images.slice(i * 784, (i + 1) * 784), label: data.test.labels[i] };
}

const SPECS: Record<string, NativeLossSpec> = {
  'xent float32': { loss: 'xent', precision: 'float32', temperature: 1 },
  'xent float64': { loss: 'xent', precision: 'float64', temperature: 1 },
  margin: { loss: 'margin', precision: 'float32' },
  'xent float32 T=20': { loss: 'xent', precision: 'float32', temperature: 20 },
};

describe('the sweep equals full forward passes of the perturbed images, bit for bit', () => {
  test.each(Object.keys(SPECS))('%s', async (name) => {
    const spec = SPECS[name];
    for (const model of [std, hot]) {
      const { image, label } = sample(3);
      const sw = await model.nativeModel.sweep(image, Int32Array.of(label), spec, null);
      const perturbed = new Float32Array(1568 * 784);
      for (let c = 0; c < 1568; c++) {
        perturbed.set(image, c * 784);
        perturbed[c * 784 + (c % 784)] = c < 784 ? 1 : 0;
      }
      const full = await model.nativeModel.attackLosses(perturbed, new Int32Array(1568).fill(label), spec);
      const base = (await model.nativeModel.attackLosses(image, Int32Array.of(label), spec)).loss[0];
      expect(sw.base[0]).toBe(base);
      let mismatches = 0;
      for (let c = 0; c < 1568; c++) if (sw.losses[c] !== full.loss[c]) mismatches++;
      expect(mismatches).toBe(0);
    }
  });

  test('on every CPU instruction set, with a skip mask, for several images at once', async () => {
    const before = native.cpuIsa();
    try {
      for (const isa of native.supportedCpuIsas()) {
        native.setCpuIsa(isa);
        const n = 3;
        const images = data.test.images.slice(10 * 784, (10 + n) * 784);
        const labels = data.test.labels.slice(10, 10 + n);
        const skip = new Uint8Array(n * 784);
        for (let p = 0; p < 784; p += 7) skip[784 + p] = 1;
        const sw = await std.nativeModel.sweep(images, labels, SPECS['xent float64'], skip);
        for (let i = 0; i < n; i++) {
          const img = images.subarray(i * 784, (i + 1) * 784);
          const perturbed = new Float32Array(1568 * 784);
          for (let c = 0; c < 1568; c++) {
            perturbed.set(img, c * 784);
            perturbed[c * 784 + (c % 784)] = c < 784 ? 1 : 0;
          }
          const full = await std.nativeModel.attackLosses(perturbed, new Int32Array(1568).fill(labels[i]), SPECS['xent float64']);
          for (let c = 0; c < 1568; c++) {
            const skipped = skip[i * 784 + (c % 784)] === 1;
            const got = sw.losses[i * 1568 + c];
            if (skipped) expect(Number.isNaN(got)).toBe(true);
            else if (got !== full.loss[c]) throw new Error(`${isa}: image ${i} candidate ${c}: sweep ${got} != full ${full.loss[c]}`);
          }
        }
      }
    } finally {
      native.setCpuIsa(before);
    }
  });
});

describe('native Algorithms 1-4 equal the brute-force reference, sample by sample', () => {
  const cases: [AttackAlgorithm, string, 'std' | 'hot', number[], number][] = [
    ['alg1', 'xent float32', 'std', [0, 1, 2, 3, 4, 5], 40],
    ['alg1', 'xent float64', 'hot', [0, 1, 2], 40],
    ['alg2', 'xent float32', 'std', [0, 1, 2, 3], 40],
    ['alg2', 'xent float32', 'hot', [0, 1, 2], 20],
    ['alg2', 'xent float64', 'hot', [0, 1, 2], 40],
    ['alg2', 'margin', 'hot', [4, 5], 40],
    ['alg2', 'xent float32 T=20', 'std', [6, 7], 40],
    ['alg3', 'xent float32', 'std', [0, 1, 2, 3, 4, 5], 40],
    ['alg3', 'margin', 'hot', [0, 1, 2], 40],
    ['alg4', 'xent float32', 'std', [0, 1], 6],
    ['alg4', 'xent float64', 'hot', [2], 5],
  ];
  test.each(cases)('%s, %s, %s model, samples %j, budget %d', async (alg, specName, which, indices, budget) => {
    const model = which === 'std' ? std : hot;
    const spec = SPECS[specName];
    const result = await runAttack(model, alg, { data, samples: indices, budget, ...spec, loss: spec.loss, precision: spec.precision });
    const algorithm = Number(alg.slice(3)) as 1 | 2 | 3 | 4;
    expect(result.summary.attacked).toBeGreaterThan(0); // the comparison must exercise the loop
    for (const rec of result.records) {
      const { image, label } = sample(rec.index);
      const ref = await bruteForceAttack(model.nativeModel, image, label, algorithm, budget, spec);
      expect({
        attacked: rec.attacked,
        success: rec.success,
        pixels: rec.pixels,
        path: rec.path,
        finalPrediction: rec.finalPrediction,
        saliencyAllZero: rec.saliencyAllZero,
      }).toEqual({
        attacked: ref.attacked,
        success: ref.success,
        pixels: ref.pixels,
        path: ref.path,
        finalPrediction: ref.finalPrediction,
        saliencyAllZero: ref.saliencyAllZero,
      });
      expect(Buffer.from(rec.adversarial.buffer).equals(Buffer.from(ref.adversarial.buffer))).toBe(true);
    }
  });

  test('the cases above are not vacuous: some succeed, some fail, some are masked', async () => {
    const a = await runAttack(std, 'alg2', { data, samples: [0, 1, 2, 3, 4, 5, 6, 7], budget: 40 });
    const h = await runAttack(hot, 'alg2', { data, samples: [0, 1, 2, 3, 4, 5, 6, 7], budget: 20 });
    expect(a.summary.successes).toBeGreaterThan(0);
    expect(h.summary.allZeroSaliency).toBeGreaterThan(0);
    expect(h.summary.successes).toBeLessThan(h.summary.attacked);
  });
});

describe('summaries', () => {
  test('Wilson intervals match published values', () => {
    const close = (x: { low: number; high: number }, low: number, high: number) => {
      expect(x.low).toBeCloseTo(low, 4);
      expect(x.high).toBeCloseTo(high, 4);
    };
    close(wilsonInterval(0, 10), 0, 0.2775);
    close(wilsonInterval(1, 10), 0.0179, 0.4042);
    close(wilsonInterval(5, 10), 0.2366, 0.7634);
    close(wilsonInterval(10, 10), 0.7225, 1);
    close(wilsonInterval(0, 0), 0, 1);
  });

  test('success rate by budget is the cumulative distribution of the pixels needed', () => {
    const rec = (attacked: boolean, success: boolean, pixels: number) => ({
      index: 0,
      label: 0,
      attacked,
      success,
      pixels,
      l0: pixels,
      initialPrediction: 0,
      finalPrediction: 0,
      saliencyAllZero: !success,
      path: [],
      adversarial: new Float32Array(784),
    });
    const s = summarize(
      { algorithm: 'alg2', budget: 5, temperature: 1, loss: 'xent', precision: 'float32' },
      [rec(true, true, 1), rec(true, true, 3), rec(true, false, 5), rec(false, false, 0), rec(true, true, 3)],
      0,
    );
    expect(s.attacked).toBe(4);
    expect(s.successes).toBe(3);
    expect(s.successRate).toBe(0.75);
    expect(s.successRateByBudget).toEqual([0.25, 0.25, 0.75, 0.75, 0.75]);
    expect(s.meanPixels).toBeCloseTo(7 / 3, 12);
    expect(s.medianPixels).toBe(3);
    expect(s.allZeroSaliency).toBe(1);
  });
});

describe('nonsense is refused with a clear message', () => {
  const cases: [string, () => Promise<unknown>, string, string, RegExp][] = [
    [
      'unknown algorithm',
      () => runAttack(std, 'alg9' as AttackAlgorithm, { data }),
      'RangeError',
      'TEMPERED_OUT_OF_RANGE',
      /unknown algorithm 'alg9'/,
    ],
    ['budget 0', () => runAttack(std, 'alg1', { data, budget: 0 }), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /budget/],
    ['budget 785', () => runAttack(std, 'alg1', { data, budget: 785 }), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /budget/],
    [
      'non-finite temperature',
      () => runAttack(std, 'alg1', { data, temperature: Infinity }),
      'RangeError',
      'TEMPERED_NOT_FINITE',
      /temperature/,
    ],
    ['index out of range', () => runAttack(std, 'alg1', { data, samples: [10000] }), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /samples\[0\]/],
    ['negative index', () => runAttack(std, 'alg1', { data, samples: [-1] }), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /samples\[0\]/],
    ['unknown loss', () => runAttack(std, 'alg1', { data, loss: 'hinge' as 'xent' }), 'RangeError', 'TEMPERED_OUT_OF_RANGE', /loss/],
    [
      'unknown precision',
      () => runAttack(std, 'alg1', { data, precision: 'float16' as 'float32' }),
      'RangeError',
      'TEMPERED_OUT_OF_RANGE',
      /precision/,
    ],
  ];
  test.each(cases)('%s', async (_name, fn, name, code, message) => {
    expectError(await caughtAsync(fn), name, code, message);
  });

  test('native attack arguments are checked too (refusals are rejections)', async () => {
    const m: NativeModel = std.nativeModel;
    const img = new Float32Array(784);
    await expect(m.attack(img, Int32Array.of(1), { algorithm: 5 as 1, budget: 10 })).rejects.toThrow(/algorithm/);
    await expect(m.attack(img, Int32Array.of(1), { algorithm: 1, budget: 0 })).rejects.toThrow(/budget/);
    await expect(m.attack(img, Int32Array.of(1), { algorithm: 1, budget: 10, loss: 'x' as 'xent' })).rejects.toThrow(/loss/);
    await expect(m.sweep(img, Int32Array.of(1), {}, new Uint8Array(3))).rejects.toThrow(/skip/);
  });
});
