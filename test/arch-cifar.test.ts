// A Carlini-Wagner CIFAR network (cw-cifar, 3x32x32) trains on synthetic colour images to
// well above chance, saves and loads as a format-2 model file with its spec, and every
// attack of the registry runs on it end to end (small sizes).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { namedArch } from '../lib/arch';
import { ATTACK_ALGORITHMS, runAttack } from '../lib/attack';
import type { MnistData, MnistSplit } from '../lib/mnist';
import { Model } from '../lib/model';
import { Random } from '../lib/rng';
import { readSafetensors } from '../lib/safetensors';
import { train } from '../lib/train';

const SHAPE = { height: 32, width: 32, channels: 3 };

/** Class k: a bright 8x8 square of colour k % 3 at one of 10 places, on a noisy background. */
function syntheticSplit(count: number, seed: number, source: 'train' | 't10k'): MnistSplit {
  const rng = new Random(seed);
  const size = 32 * 32 * 3;
  const images = new Float32Array(count * size);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = i % 10;
    labels[i] = k;
    const top = 4 + 12 * Math.floor(k / 5);
    const left = 2 + 6 * (k % 5);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        for (let c = 0; c < 3; c++) {
          const inside = y >= top && y < top + 8 && x >= left && x < left + 8;
          images[i * size + (y * 32 + x) * 3 + c] = inside && c === k % 3 ? 0.9 : Math.fround(0.3 * rng.next());
        }
  }
  return { images, labels, count, firstIndex: 0, source, shape: SHAPE, classes: 10 };
}

test('cw-cifar: trains on synthetic 3x32x32 data, round-trips its file, and every attack runs on it', async () => {
  const data: MnistData = {
    train: syntheticSplit(600, 1, 'train'),
    validation: syntheticSplit(100, 2, 'train'),
    test: syntheticSplit(100, 3, 't10k'),
    dir: 'synthetic',
    split: 'paper',
    fingerprint: 'synthetic-cifar-shapes',
    description: 'synthetic 3x32x32 squares',
  };
  const model = Model.create({ seed: 1, arch: namedArch('cw-cifar'), backend: 'cpu' });
  expect(model.archName).toBe('cw-cifar');
  await train(model, data, { epochs: 2, batchSize: 32, learningRate: 0.05, validate: false });
  const accuracy = (await model.evaluate(data.test)).accuracy;
  expect(accuracy).toBeGreaterThan(0.5); // chance is 0.1

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-cifar-'));
  const file = path.join(dir, 'cifar.safetensors');
  await model.save(file);
  const { metadata } = await readSafetensors(file);
  expect(metadata.format_version).toBe('2');
  expect(JSON.parse(metadata.arch).input).toEqual({ channels: 3, height: 32, width: 32 });
  const loaded = await Model.load(file, { backend: 'cpu' });
  expect(loaded.archName).toBe('cw-cifar');
  expect((await loaded.evaluate(data.test)).accuracy).toBe(accuracy);
  fs.rmSync(dir, { recursive: true });

  for (const alg of ATTACK_ALGORITHMS) {
    const budget =
      alg === 'jsma' || alg === 'jsma-z'
        ? { budget: 20 }
        : alg.startsWith('alg')
          ? { budget: 10 }
          : alg === 'square'
            ? { queries: 100 }
            : alg === 'cw-l2'
              ? { steps: 10, searchSteps: 2 }
              : {};
    const r = await runAttack(model, alg, { split: data.test, samples: [0, 1, 2], ...budget });
    expect(r.records).toHaveLength(3);
    for (const rec of r.records) expect(rec.adversarial).toHaveLength(32 * 32 * 3);
    expect(r.summary.attacked).toBeGreaterThan(0);
  }
  model.dispose();
  loaded.dispose();
}, 300000);

test("the pixel attacks' budgets and JSMA's targets follow the model's size and classes", async () => {
  // An untrained 5-class net on 3x12x12 images: 144 positions, 432 features.
  const model = Model.create({
    seed: 3,
    backend: 'cpu',
    arch: {
      input: { channels: 3, height: 12, width: 12 },
      layers: [{ type: 'conv', filters: 4 }, { type: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 5 }],
    },
  });
  const rng = new Random(4);
  const count = 40;
  const images = Float32Array.from({ length: count * 432 }, () => rng.next());
  const predicted = await model.predict(images);
  // Labels the model already predicts, so that every sample is attacked.
  const split: MnistSplit = {
    images,
    labels: Int32Array.from(predicted),
    count,
    firstIndex: 0,
    source: 't10k',
    shape: { height: 12, width: 12, channels: 3 },
    classes: 5,
  };
  const jsma = await runAttack(model, 'jsma-z', { split, samples: [0, 1] });
  expect(jsma.summary.budget).toBe(2 * Math.floor((432 * 0.145) / 2)); // 62, not MNIST's 112
  const all = await runAttack(model, 'jsma-z', { split, samples: [0, 1], target: 'all', budget: 4 });
  expect(all.records).toHaveLength(2 * 4);
  const random = await runAttack(model, 'jsma-z', { split, samples: 20, budget: 2, seed: 9 });
  for (const r of random.records) {
    expect(r.target).toBeGreaterThanOrEqual(0);
    expect(r.target).toBeLessThan(5);
    expect(r.target).not.toBe(r.label);
  }
  await expect(runAttack(model, 'alg2', { split, samples: [0], budget: 145 })).rejects.toMatchObject({
    code: 'TEMPERED_OUT_OF_RANGE',
    message: expect.stringMatching(/at most 144/),
  });
  await expect(runAttack(model, 'jsma', { split, samples: [0], budget: 433 })).rejects.toMatchObject({ code: 'TEMPERED_OUT_OF_RANGE' });
  await expect(runAttack(model, 'jsma', { split, samples: [0], target: 5 })).rejects.toMatchObject({
    code: 'TEMPERED_OUT_OF_RANGE',
    message: expect.stringMatching(/class 0-4/),
  });
  expect((await runAttack(model, 'alg1', { split, samples: [0], budget: 144 })).summary.budget).toBe(144);
  model.dispose();
}, 120000);
