// The same seed, backend and thread count give bit-identical weights; on the CPU the
// thread count does not matter either (tasks are fixed by the problem, not the pool).
import { native } from '../lib/native';
import { randomImages } from './helpers';

async function trainOnce(seed: number, threads: number, isa?: string): Promise<Float32Array> {
  native.setThreads(threads);
  const before = native.cpuIsa();
  if (isa) native.setCpuIsa(isa);
  try {
    const n = 200;
    const images = randomImages(n, 11);
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
    const ds = await native.createDataset('cpu', images, labels);
    const model = native.createModel('cpu', seed);
    const idx = Int32Array.from({ length: n }, (_, i) => (i * 37) % n);
    await model.trainSteps(ds, idx, 50, { temperature: 2, dropoutRate: 0.5, dropoutSeed: seed }, 0);
    await model.trainSteps(ds, idx.subarray(0, 77), 32, { temperature: 2, dropoutRate: 0.5, dropoutSeed: seed }, 4);
    return model.getParameters();
  } finally {
    native.setCpuIsa(before);
  }
}

const hw = native.hardwareThreads();
afterAll(() => native.setThreads(hw));

function firstDifference(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (Object.is(a[i], b[i]) === false) return i;
  return -1;
}

test('same seed and threads: bit-identical weights after training', async () => {
  const a = await trainOnce(5, hw);
  const b = await trainOnce(5, hw);
  expect(firstDifference(a, b)).toBe(-1);
});

test('a different seed gives different weights', async () => {
  const a = await trainOnce(5, hw);
  const b = await trainOnce(6, hw);
  expect(firstDifference(a, b)).not.toBe(-1);
});

test('1 thread and several threads give bit-identical weights', async () => {
  const a = await trainOnce(9, 1);
  const b = await trainOnce(9, Math.max(2, hw));
  const c = await trainOnce(9, 5);
  expect(firstDifference(a, b)).toBe(-1);
  expect(firstDifference(a, c)).toBe(-1);
});

test('training changes the weights (the comparison above is not vacuous)', async () => {
  const trained = await trainOnce(3, hw);
  const fresh = native.createModel('cpu', 3).getParameters();
  expect(firstDifference(trained, fresh)).not.toBe(-1);
});

test('each instruction set is deterministic on its own', async () => {
  for (const isa of native.supportedCpuIsas()) {
    const a = await trainOnce(4, 2, isa);
    const b = await trainOnce(4, 3, isa);
    expect({ isa, diff: firstDifference(a, b) }).toEqual({ isa, diff: -1 });
  }
});
