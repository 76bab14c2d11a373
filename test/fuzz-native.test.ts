// Property-based fuzzing of the native entry points' arguments (test/fixtures/fuzz-native.js):
// 10,000 generated calls with fixed seeds, in child processes so that a crash is reported as
// a signal. Each call must give a result or a coded refusal, never throw from a method that
// returns a Promise, never hang.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { addonPath } from '../lib/native';

const addon = addonPath();
const fixture = path.join(__dirname, 'fixtures', 'fuzz-native.js');

test.each([
  [1, 5000],
  [2, 5000],
])('seed %i: %i generated calls, each answered with a result or a coded error', (seed, runs) => {
  const r = spawnSync(process.execPath, [fixture, addon, String(runs), String(seed)], { encoding: 'utf8', timeout: 600000 });
  expect({ signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
  expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ cases: runs, failures: [] });
});
