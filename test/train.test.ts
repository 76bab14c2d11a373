// Training through the library and the CLI: it learns, it resumes bit-identically after an
// interruption (including kill -9 of the CLI), and it refuses to resume a different run.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadMnist, MnistData } from '../lib/mnist';
import { Model } from '../lib/model';
import { train } from '../lib/train';
import { caughtAsync, expectError } from './helpers';

let data: MnistData;
let tmp: string;
const root = path.join(__dirname, '..');
const cli = path.join(root, 'bin', 'tempered.js');

beforeAll(async () => {
  data = await loadMnist();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-train-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function identical(a: Float32Array, b: Float32Array): boolean {
  return (
    a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  );
}

const quick = { trainLimit: 1000, batchSize: 50, epochs: 2, seed: 3 };

test('a short run learns: validation accuracy far above chance', async () => {
  const model = Model.create({ seed: 1 });
  const r = await train(model, data, { trainLimit: 8000, epochs: 1 });
  expect(r.history).toHaveLength(1);
  // PyTorch with the same settings reaches 61% and 72% here (seeds 1, 2); chance is 10%.
  expect(r.history[0].validationAccuracy!).toBeGreaterThan(0.5);
  expect(model.metadata.trainingTemperature).toBe(1);
  expect(model.metadata.data?.fingerprint).toBe(data.fingerprint);
  expect(model.metadata.training).toMatchObject({ epochs: 1, batchSize: 128, learningRate: 0.1, momentum: 0.5, l2: 0.01 });
});

test('an interrupted run resumes from its checkpoint to bit-identical weights', async () => {
  const straight = Model.create({ seed: 3 });
  await train(straight, data, { ...quick, validate: false });

  const checkpoint = path.join(tmp, 'resume.checkpoint');
  // Stop the first run after its first epoch (the checkpoint is written before onEpoch).
  const stop = new AbortController();
  const first = Model.create({ seed: 3 });
  const e = await caughtAsync(() =>
    train(first, data, { ...quick, validate: false, checkpoint, signal: stop.signal, onEpoch: () => stop.abort() }),
  );
  expect(e.message).toMatch(/aborted/);
  expect(fs.existsSync(checkpoint)).toBe(true);

  const resumed = Model.create({ seed: 99 }); // other initial weights: the checkpoint must replace them
  const r = await train(resumed, data, { ...quick, validate: false, checkpoint });
  expect(r.resumedEpochs).toBe(1);
  expect(r.history.map((h) => h.epoch)).toEqual([1, 2]);
  expect(identical(resumed.getParameters(), straight.getParameters())).toBe(true);
});

test('resuming with another configuration is refused', async () => {
  const checkpoint = path.join(tmp, 'other.checkpoint');
  await train(Model.create({ seed: 3 }), data, { ...quick, epochs: 1, validate: false, checkpoint });
  const e = await caughtAsync(() => train(Model.create({ seed: 3 }), data, { ...quick, learningRate: 0.05, validate: false, checkpoint }));
  expectError(e, 'TemperedError', 'TEMPERED_INCOMPATIBLE', /another configuration/);
});

test('bad options are refused before training starts', async () => {
  const m = Model.create();
  expectError(await caughtAsync(() => train(m, data, { temperature: 0 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE');
  expectError(await caughtAsync(() => train(m, data, { epochs: 1.5 })), 'RangeError', 'TEMPERED_OUT_OF_RANGE');
  expectError(await caughtAsync(() => train(m, data, { learningRate: NaN })), 'RangeError', 'TEMPERED_NOT_FINITE');
  expectError(await caughtAsync(() => train(m, data, { softTargets: new Float32Array(10) })), 'RangeError', 'TEMPERED_INVALID_LENGTH');
});

describe('CLI', () => {
  test('train --json then eval --json', () => {
    const out = path.join(tmp, 'cli.safetensors');
    const r = spawnSync(
      process.execPath,
      [cli, 'train', '--epochs', '1', '--train-limit', '500', '--batch-size', '50', '--seed', '2', '--out', out, '--json'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.model).toBe(out);
    expect(result.history).toHaveLength(1);
    expect(result.testAccuracy).toBeGreaterThan(0.1);
    expect(result.config).toMatchObject({ seed: 2, batchSize: 50, trainLimit: 500, temperature: 1 });
    expect(fs.existsSync(`${out}.checkpoint`)).toBe(false);
    const e = spawnSync(process.execPath, [cli, 'eval', '--model', out, '--temperature', '20', '--json'], { encoding: 'utf8' });
    expect(e.status).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev.accuracy).toBeCloseTo(result.testAccuracy, 10);
    expect(ev.temperature).toBe(20);
    expect(ev.metadata.seed).toBe(2);
  });

  test('bad input exits with status 2 and a coded message', () => {
    const bad = spawnSync(process.execPath, [cli, 'train', '--out', path.join(tmp, 'x'), '--temperature', 'abc'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--temperature must be a finite number/);
    const neg = spawnSync(process.execPath, [cli, 'train', '--out', path.join(tmp, 'x'), '--temperature', '-1'], { encoding: 'utf8' });
    expect(neg.status).toBe(2);
    expect(neg.stderr).toMatch(/TEMPERED_OUT_OF_RANGE/);
    const missing = spawnSync(process.execPath, [cli, 'eval', '--model', path.join(tmp, 'nope.safetensors')], { encoding: 'utf8' });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.safetensors/);
  });

  test('kill -9 in the middle of a run loses nothing: the rerun resumes and ends identical', async () => {
    const args = ['train', '--epochs', '3', '--train-limit', '1500', '--batch-size', '50', '--seed', '4', '--quiet', '--json'];
    const straight = path.join(tmp, 'straight.safetensors');
    expect(spawnSync(process.execPath, [cli, ...args, '--out', straight], { encoding: 'utf8' }).status).toBe(0);

    const out = path.join(tmp, 'killed.safetensors');
    const child = spawn(process.execPath, [cli, ...args, '--out', out], { stdio: 'ignore' });
    const checkpoint = `${out}.checkpoint`;
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (fs.existsSync(checkpoint)) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        } else if (Date.now() - started > 60000 || child.exitCode !== null) {
          clearInterval(poll);
          reject(new Error('the checkpoint never appeared'));
        }
      }, 20);
    });
    await new Promise((r) => child.on('exit', r));
    expect(fs.existsSync(out)).toBe(false);
    const rerun = spawnSync(process.execPath, [cli, ...args, '--out', out], { encoding: 'utf8' });
    expect(rerun.status).toBe(0);
    expect(JSON.parse(rerun.stdout).resumedEpochs).toBeGreaterThanOrEqual(1);
    const a = await Model.load(straight);
    const b = await Model.load(out);
    expect(identical(a.getParameters(), b.getParameters())).toBe(true);
  });
});
