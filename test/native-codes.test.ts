// One list of error codes and one table of limits: lib/errors.ts's TEMPERED_ERRORS against
// the codes the native sources and lib/ can raise, the CLI's exit statuses built from it,
// and the TypeScript checks against the engine's on the same values.
import * as fs from 'fs';
import * as path from 'path';
import { TEMPERED_ERRORS, TEMPERED_ERROR_CODES, TemperedError, exitStatus } from '../lib/errors';
import { checkLimit, limits, LimitName } from '../lib/limits';
import { native } from '../lib/native';
import { main } from '../lib/cli/main';
import { caught, caughtAsync } from './helpers';

const root = path.join(__dirname, '..');

function filesUnder(dir: string, ext: RegExp): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? filesUnder(p, ext) : ext.test(d.name) ? [p] : [];
  });
}

test('every code in native/napi/errors.h and status.h is in the list, and the list has no code nothing raises', () => {
  const errorsH = fs.readFileSync(path.join(root, 'native/napi/errors.h'), 'utf8');
  const statusH = fs.readFileSync(path.join(root, 'native/include/tempered/status.h'), 'utf8');
  const fromErrorsH = [...errorsH.matchAll(/constexpr const char\* k\w+ = "(TEMPERED_[A-Z_]+)"/g)].map((m) => m[1]);
  const fromStatusH = [...statusH.matchAll(/return "(TEMPERED_[A-Z_]+)"/g)].map((m) => m[1]).filter((c) => c !== 'TEMPERED_OK');
  expect(fromErrorsH.length).toBeGreaterThanOrEqual(7);
  expect(new Set(fromStatusH).size).toBe(7); // status.h: InvalidArgument ... Internal, BadArch, Unsupported
  const lib = filesUnder(path.join(root, 'lib'), /\.ts$/)
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
  const fromLib = [...lib.matchAll(/'(TEMPERED_[A-Z_]+)'/g)].map((m) => m[1]);
  const raised = new Set([...fromErrorsH, ...fromStatusH, ...fromLib.filter((c) => !/^TEMPERED_(ISA|CUDA)/.test(c))]);
  expect([...raised].filter((c) => !(c in TEMPERED_ERRORS)).sort()).toEqual([]);
  expect(TEMPERED_ERROR_CODES.filter((c) => !raised.has(c)).sort()).toEqual([]);
});

test('exit statuses: 2 for input the caller can fix, including a missing model file; 1 for the rest', () => {
  expect(exitStatus(Object.assign(new Error('x'), { code: 'TEMPERED_INVALID_ARGUMENT' }))).toBe(2);
  expect(exitStatus(Object.assign(new Error('x'), { code: 'TEMPERED_OUT_OF_RANGE' }))).toBe(2);
  expect(exitStatus(new TemperedError('TEMPERED_IO', 'x', { cause: Object.assign(new Error('y'), { code: 'ENOENT' }) }))).toBe(2);
  expect(exitStatus(new TemperedError('TEMPERED_IO', 'x', { cause: Object.assign(new Error('y'), { code: 'EIO' }) }))).toBe(1);
  expect(exitStatus(Object.assign(new Error('x'), { code: 'TEMPERED_INTERNAL' }))).toBe(1);
  expect(exitStatus(new Error('no code'))).toBe(1);
  expect(exitStatus('not even an error')).toBe(1);
});

test('the CLI exits 2 for a model file that does not exist', async () => {
  const write = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
  try {
    const status = await main(['node', 'tempered', 'eval', '--model', path.join(root, 'no-such-model.safetensors'), '--quiet']);
    expect({ status, coded: /TEMPERED_IO/.test(stderr) }).toEqual({ status: 2, coded: true });
  } finally {
    process.stderr.write = write;
  }
});

// The native check of each limit, through the entry point that enforces it.
const NATIVE_CHECK: Record<LimitName, (x: number) => Promise<unknown>> = {
  temperature: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { temperature: x }, 0),
  learningRate: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { learningRate: x }, 0),
  momentum: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { momentum: x }, 0),
  lossScale: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { lossScale: x }, 0),
  l2: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { l2: x }, 0),
  dropoutRate: (x) => native.createModel('cpu', 0).trace(new Float32Array(784), Int32Array.of(0), null, { dropoutRate: x }, 0),
  lossTemperature: (x) => native.createModel('cpu', 0).attackLosses(new Float32Array(784), Int32Array.of(0), { temperature: x }),
  epsilon: (x) =>
    native.createModel('cpu', 0).pgd(new Float32Array(784), Int32Array.of(0), Uint32Array.of(0), { epsilon: x, steps: 1, stepSize: 0.01 }),
  stepSize: (x) =>
    native.createModel('cpu', 0).pgd(new Float32Array(784), Int32Array.of(0), Uint32Array.of(0), { epsilon: 0.1, steps: 1, stepSize: x }),
};
const PREFIX: Record<LimitName, string> = {
  temperature: 'config.temperature',
  learningRate: 'config.learningRate',
  momentum: 'config.momentum',
  lossScale: 'config.lossScale',
  l2: 'config.l2',
  dropoutRate: 'config.dropoutRate',
  lossTemperature: 'lossSpec.temperature',
  epsilon: 'config.epsilon',
  stepSize: 'config.stepSize',
};

test('TypeScript refuses exactly the values the engine refuses, with the same message', async () => {
  const table = limits();
  expect(Object.keys(table).sort()).toEqual(Object.keys(NATIVE_CHECK).sort());
  for (const key of Object.keys(NATIVE_CHECK) as LimitName[]) {
    const l = table[key];
    const values = [l.min, l.max, l.min - 1, l.max * 2, (l.min + l.max) / 2, -0.5, NaN, Infinity, 2e6, 1e-7];
    for (const x of values) {
      const name = PREFIX[key];
      let ts: string | undefined;
      try {
        checkLimit(x, name, key);
      } catch (e) {
        ts = `${(e as Error).name} ${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      let cpp: string | undefined;
      try {
        await NATIVE_CHECK[key](x);
      } catch (e) {
        cpp = `${(e as Error).name} ${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      expect([key, x, ts]).toEqual([key, x, cpp]);
    }
  }
  // The case: a training temperature of 2e6 is refused by TypeScript as by C++.
  expect(caught(() => checkLimit(2e6, 'temperature', 'temperature')).message).toBe('temperature must be in (0, 1000000] (got 2000000)');
  expect((await caughtAsync(() => NATIVE_CHECK.temperature(2e6))).message).toBe('config.temperature must be in (0, 1000000] (got 2000000)');
});
