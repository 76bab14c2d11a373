// Regression cases of a hostile run against the addon: each scenario once crashed the
// process (SIGABRT when a worker ended mid-call, SIGSEGV when a getter disposed, rewrote or
// called back in). Each runs in a child process of its own, so a crash is reported here as
// a signal instead of taking jest down.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { addonPath } from '../lib/native';

const addon = addonPath();
const fixture = path.join(__dirname, 'fixtures', 'native-hostile.js');

function run(scenario: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, [fixture, addon, scenario], { encoding: 'utf8', timeout: 120000 });
  expect({ signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

const METHODS = ['trainSteps', 'trace', 'attack', 'inputGradient', 'attackLosses', 'sweep'];

test('a worker terminated while its call runs does not abort the process', () => {
  expect(run('worker-terminated')).toEqual({ terminated: 6 });
});

test('a worker that exits while its call runs does not abort the process', () => {
  expect(run('worker-exits')).toEqual({ codes: [0, 0, 0, 0] });
});

test('a getter that disposes the model is refused with TEMPERED_BUSY and the call completes', () => {
  const r = run('getter-disposes-model');
  for (const m of METHODS) expect([m, r[m]]).toEqual([m, { disposal: 'TEMPERED_BUSY', call: 'ok', disposedAfter: false }]);
});

test('a getter that disposes the data set in use is refused with TEMPERED_BUSY', () => {
  expect(run('getter-disposes-dataset')).toEqual({ disposal: 'TEMPERED_BUSY', call: 'ok', disposedAfter: false });
});

test('inputs rewritten by a getter after they were passed do not reach the engine', () => {
  expect(run('getter-rewrites-inputs')).toEqual({ trainSteps: 'ok', attack: 'ok', inputGradient: 'ok', attackLosses: 'ok', sweep: 'ok' });
});

test('buffers detached by a getter after they were passed do not reach the engine', () => {
  const r = run('getter-detaches-buffers');
  for (const m of ['trace', 'attack', 'inputGradient', 'attackLosses', 'sweep'])
    expect([m, r[m]]).toEqual([m, { call: 'ok', detached: true }]);
});

test('a getter that starts another call on the model gets TEMPERED_BUSY; dispose stays refused until the first call ends', () => {
  const r = run('getter-starts-another-call');
  for (const m of METHODS) expect([m, r[m]]).toEqual([m, { inner: 'TEMPERED_BUSY', disposeWhileRunning: 'TEMPERED_BUSY', call: 'ok' }]);
});

test('labels rewritten by another thread in a SharedArrayBuffer give a result or a coded refusal', () => {
  const { seen } = run('shared-labels-rewritten') as { seen: Record<string, number> };
  expect(Object.keys(seen).filter((k) => k !== 'ok' && k !== 'TEMPERED_OUT_OF_RANGE')).toEqual([]);
  expect(Object.values(seen).reduce((a, b) => a + b, 0)).toBe(300);
});

test('impostors of a data set are coded TypeErrors; a method on the wrong receiver is a TypeError', () => {
  expect(run('impostors')).toEqual({
    proxy: 'TEMPERED_INVALID_TYPE',
    prototypeOnly: 'TEMPERED_INVALID_TYPE',
    wrongReceiver: 'TypeError',
    stillWorks: 'ok',
  });
});
