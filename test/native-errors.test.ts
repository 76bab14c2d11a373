// Every native entry point refuses bad arguments with a coded TypeError/RangeError/Error,
// checked on the main thread before any work starts: thrown by the synchronous ones,
// rejected (never thrown) by those that return a Promise. The process survives every case
// and the objects stay usable.
import { spawnSync } from 'child_process';
import * as path from 'path';
import type { Dataset, Model } from '../binding';
import { addonPath, native } from '../lib/native';
import { caught, caughtAsync, expectError } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { badCalls } = require('./fixtures/native-bad-calls.js') as {
  badCalls: (n: unknown, m: Model, d: Dataset) => [string, () => unknown, string, string][];
};

let model: Model;
let dataset: Dataset;

beforeAll(async () => {
  model = native.createModel('cpu', 1);
  dataset = await native.createDataset('cpu', new Float32Array(4 * 784), Int32Array.of(0, 1, 2, 3));
});

/** The refusal of fn: thrown when fn is synchronous, rejected when it returns a promise (a
 * promise-returning entry point must not throw). */
async function refusal(fn: () => unknown): Promise<Error & { code?: string }> {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    throw new Error(`a promise-returning call threw ${(e as Error).name} ${(e as { code?: string }).code} instead of rejecting`);
  }
  expect(typeof (result as Promise<unknown>).then).toBe('function'); // another realm's Promise
  return caughtAsync(() => result as Promise<unknown>);
}

/** Whether fn's refusal must be thrown: the synchronous entry points. */
const SYNC = /^(createModel|setThreads|setCpuIsa|setParameters|setVelocity|getParameters|getVelocity|dispose)\b/;

describe('bad arguments are refused with a code: thrown by synchronous calls, rejected by promise-returning ones', () => {
  const cases = badCalls(native, undefined as unknown as Model, undefined as unknown as Dataset);
  test.each(cases.map((c, i) => [c[0], i] as const))('%s', async (label, i) => {
    const [, fn, name, code] = badCalls(native, model, dataset)[i];
    expectError(SYNC.test(label) ? caught(fn) : await refusal(fn), name, code);
  });
});

test('the model still works after every refusal', async () => {
  const logits = await model.predict(new Float32Array(2 * 784));
  expect(logits.length).toBe(20);
  expect(Array.from(logits).every(Number.isFinite)).toBe(true);
});

test('a second operation while one runs is refused with TEMPERED_BUSY, then the model is usable', async () => {
  const first = model.predict(new Float32Array(64 * 784));
  const second = model.predict(new Float32Array(784));
  expectError(await caughtAsync(() => second), 'Error', 'TEMPERED_BUSY');
  expectError(
    caught(() => model.getParameters()),
    'Error',
    'TEMPERED_BUSY',
  );
  expectError(
    caught(() => model.dispose()),
    'Error',
    'TEMPERED_BUSY',
  );
  await first;
  expect((await model.predict(new Float32Array(784))).length).toBe(10);
});

test('a dataset in use cannot be disposed; a disposed one is refused', async () => {
  const ds = await native.createDataset('cpu', new Float32Array(2 * 784), Int32Array.of(0, 1));
  const m = native.createModel('cpu', 2);
  const run = m.trainSteps(ds, Int32Array.of(0, 1), 2, {}, 0);
  expectError(
    caught(() => ds.dispose()),
    'Error',
    'TEMPERED_BUSY',
  );
  await run;
  ds.dispose();
  expect(ds.isDisposed()).toBe(true);
  expectError(await caughtAsync(() => m.trainSteps(ds, Int32Array.of(0), 1, {}, 0)), 'Error', 'TEMPERED_DISPOSED');
  m.dispose();
  expectError(
    caught(() => m.getParameters()),
    'Error',
    'TEMPERED_DISPOSED',
  );
  expectError(await caughtAsync(() => m.predict(new Float32Array(784))), 'Error', 'TEMPERED_DISPOSED');
  expectError(
    caught(() => m.setParameters(new Float32Array(m.parameterCount()))),
    'Error',
    'TEMPERED_DISPOSED',
  );
});

test('asking for an unavailable backend is an Error with TEMPERED_BACKEND_UNAVAILABLE and the reason', async () => {
  const cuda = native.backends().find((b) => b.name === 'cuda')!;
  if (cuda.available) {
    console.warn('CUDA is available here; the unavailable-backend case cannot be exercised');
    return;
  }
  const e = caught(() => native.createModel('cuda', 0));
  expectError(e, 'Error', 'TEMPERED_BACKEND_UNAVAILABLE');
  expect(e.message).toContain(cuda.reason!);
  const e2 = await caughtAsync(() => native.createDataset('cuda', new Float32Array(784), Int32Array.of(0)));
  expectError(e2, 'Error', 'TEMPERED_BACKEND_UNAVAILABLE');
});

test("a refusal from a promise-returning call carries the caller's stack", async () => {
  async function callerWithAName(): Promise<unknown> {
    return native.createModel('cpu', 3).predict(new Float32Array(5));
  }
  const e = await caughtAsync(callerWithAName);
  expectError(e, 'RangeError', 'TEMPERED_INVALID_LENGTH');
  expect(e.stack).toContain('callerWithAName');
});

test('a child process runs every bad call and survives', () => {
  const addon = addonPath();
  const r = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'native-bad-calls.js'), addon], {
    encoding: 'utf8',
    timeout: 60000,
  });
  const count = badCalls(native, model, dataset).length;
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toBe(`SURVIVED ${count} 10`);
});
