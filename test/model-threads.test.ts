// Models with CPU threads of their own (Model.create({ threads }), setThreads): two trainings
// at once, each on its own pool, end with the weights of one after the other on the shared
// pool, whatever the thread counts; a model freed (or re-threaded) while another trains
// changes nothing; bad thread counts and calls while busy are refused with their codes.
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { getThreads } from '../lib/backends';
import { train, TrainOptions } from '../lib/train';
import { caught, expectError } from './helpers';

let data: MnistData;
beforeAll(async () => {
  data = await loadMnist();
});

const options = (temperature: number): TrainOptions => ({
  trainLimit: 640,
  batchSize: 64,
  epochs: 2,
  seed: 5,
  temperature,
  validate: false,
});

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

// M_std-like and M_std-T-like models: different temperatures, so different weights.
async function serially(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const t of [1, 20]) {
    const m = Model.create({ seed: 2, backend: 'cpu' });
    await train(m, data, options(t));
    out.push(bytes(m.getParameters()));
  }
  return out;
}

test('two trainings at once on their own threads give the weights of one after the other', async () => {
  const reference = await serially();
  expect(reference[0].equals(reference[1])).toBe(false);
  for (const threads of [
    [1, 1],
    [2, 1],
    [3, 2],
  ]) {
    const models = threads.map((n) => Model.create({ seed: 2, backend: 'cpu', threads: n }));
    expect(models.map((m) => m.threads)).toEqual(threads);
    await Promise.all(models.map((m, i) => train(m, data, options([1, 20][i]))));
    expect(models.map((m) => bytes(m.getParameters()).equals(reference[models.indexOf(m)]))).toEqual([true, true]);
  }
});

test('a model freed or re-threaded while another trains on its own pool changes nothing', async () => {
  const [reference] = await serially();
  const m = Model.create({ seed: 2, backend: 'cpu', threads: 2 });
  const running = train(m, data, options(1));
  for (let i = 0; i < 20; i++) {
    const other = Model.create({ seed: i, backend: 'cpu', threads: 1 + (i % 3) });
    await other.predict(new Float32Array(4 * 784));
    other.setThreads(2);
    other.setThreads(undefined);
    other.setThreads(1);
    other.dispose();
  }
  await running;
  expect(bytes(m.getParameters()).equals(reference)).toBe(true);
  // Back on the process-wide pool: the same forward pass.
  const images = new Float32Array(8 * 784).map((_, i) => (i % 13) / 13);
  const own = await m.predict(images);
  m.setThreads(undefined);
  expect(m.threads).toBeUndefined();
  expect(bytes(await m.predict(images)).equals(bytes(own))).toBe(true);
});

test('thread counts are checked; setThreads is refused while the model works or once disposed', async () => {
  const m = Model.create({ seed: 1, backend: 'cpu' });
  expect(m.threads).toBeUndefined();
  for (const bad of [0, -1, 1.5, 1025])
    expectError(
      caught(() => m.setThreads(bad)),
      'RangeError',
      'TEMPERED_OUT_OF_RANGE',
    );
  expectError(
    caught(() => Model.create({ threads: 0 })),
    'RangeError',
    'TEMPERED_OUT_OF_RANGE',
  );
  expectError(
    caught(() => m.setThreads(NaN)),
    'RangeError',
    'TEMPERED_NOT_FINITE',
  );
  expectError(
    caught(() => m.nativeModel.setThreads(-1)),
    'RangeError',
    'TEMPERED_OUT_OF_RANGE',
  );
  const busy = m.predict(new Float32Array(64 * 784));
  expectError(
    caught(() => m.setThreads(2)),
    'Error',
    'TEMPERED_BUSY',
  );
  await busy;
  m.setThreads(2);
  expect(m.threads).toBe(2);
  expect(getThreads()).toBeGreaterThanOrEqual(1); // the process-wide pool is untouched
  m.dispose();
  expectError(
    caught(() => m.setThreads(1)),
    'Error',
    'TEMPERED_DISPOSED',
  );
});
