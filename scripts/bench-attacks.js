#!/usr/bin/env node
// npm run bench:attacks: each attack of the table ATTACKS below on the CPU, ours (runAttack)
// beside PyTorch running the same algorithm (scripts/torch_attacks.py, Debian's python3-torch,
// its table has the same ids and takes the same options) on the same model file and the same
// test images, same thread count, in this one run. Prints, per attack, samples/s of each side
// and their ratio, work/s of each side and their ratio, and the processor.
//
//   node scripts/bench-attacks.js [--model FILE] [--samples N] [--epsilon E] [--steps S]
//                                 [--threads N] [--only a,b] [--python PATH] [--json]
//
// Both sides attack the first N test images that the model classifies correctly (the others
// are skipped, as runAttack does). --epsilon and --steps set APGD's radius and steps; Square
// and C&W keep a fixed workload so both sides do the same work: Square at epsilon 0.05 with
// 300 queries (pInit 0.8), where M_std resists, so every sample runs its whole budget; C&W
// with 2 constants x 50 steps (lr 0.01, initial constant 1e-3, confidence 0), never stopped
// early.
//
// The work each attack counts (the "work/s" column):
//   apgd-ce, apgd-dlr, apgd-t: gradient steps actually taken, over every run (and target).
//     Samples stop at their first misclassified iterate on both sides and the random starts
//     differ (counter-based here, torch.rand there), so the steps per sample differ a little:
//     steps/s is the like-for-like figure.
//   square: queries used (forward passes of perturbed images, the initial stripes included).
//   cw-l2: gradient evaluations, steps x constants per sample.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const root = path.resolve(__dirname, '..');
const { native } = require(path.join(root, 'dist', 'lib', 'native.js'));
const { Model } = require(path.join(root, 'dist', 'lib', 'model.js'));
const { runAttack } = require(path.join(root, 'dist', 'lib', 'attack.js'));
const { loadMnist } = require(path.join(root, 'dist', 'lib', 'mnist.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const threads = Number(arg('threads', native.hardwareThreads()));
const modelFile = arg('model', path.join(root, 'docs', 'results', 'paper', 'models', 'std.safetensors'));
const samples = Number(arg('samples', 32));
const epsilon = Number(arg('epsilon', 0.3));
const steps = Number(arg('steps', 100));
const python = arg('python', '/usr/bin/python3');
const json = process.argv.includes('--json');

// One entry per attack: its registry id, its runAttack options (torch_attacks.py gets the
// same options under the same names), what its work counts, and that work from our records
// (the records of attacked samples).
const sumPixels = (records) => records.reduce((s, r) => s + r.pixels, 0);
const ATTACKS = [
  { id: 'apgd-ce', options: { epsilon, steps }, unit: 'steps', work: sumPixels },
  { id: 'apgd-dlr', options: { epsilon, steps }, unit: 'steps', work: sumPixels },
  { id: 'apgd-t', options: { epsilon, steps }, unit: 'steps', work: sumPixels },
  { id: 'square', options: { epsilon: 0.05, queries: 300, pInit: 0.8 }, unit: 'queries', work: sumPixels },
  {
    id: 'cw-l2',
    options: { steps: 50, searchSteps: 2, learningRate: 0.01, initialConst: 1e-3, confidence: 0 },
    unit: 'gradient evaluations',
    // C&W's records count the evaluations up to the best image; it runs them all.
    work: (records, o) => records.length * o.steps * o.searchSteps,
  },
];
const only = new Set(arg('only', ATTACKS.map((a) => a.id).join(',')).split(','));
const chosen = ATTACKS.filter((a) => only.has(a.id));

native.setThreads(threads);

function processor() {
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
    if (m) return m[1];
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

async function main() {
  const model = await Model.load(modelFile, { backend: 'cpu' });
  const data = await loadMnist();
  const indices = Array.from({ length: samples }, (_, i) => i);
  const ours = {};
  for (const a of chosen) {
    const t0 = process.hrtime.bigint();
    const r = await runAttack(model, a.id, { ...a.options, data, samples: indices, seed: 0 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const attacked = r.records.filter((x) => x.attacked);
    ours[a.id] = { seconds: secs, attacked: attacked.length, fooled: r.summary.successes, work: a.work(attacked, a.options) };
  }
  // The same images and labels for the peer.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-attacks-'));
  const size = model.inputSize;
  fs.writeFileSync(path.join(dir, 'images.f32'), Buffer.from(data.test.images.slice(0, samples * size).buffer));
  fs.writeFileSync(path.join(dir, 'labels.i32'), Buffer.from(Int32Array.from(data.test.labels.slice(0, samples)).buffer));
  let peer;
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) peer = { missing: `PyTorch not found by ${python}` };
  else {
    const r = spawnSync(
      python,
      [
        path.join(__dirname, 'torch_attacks.py'),
        '--model',
        modelFile,
        '--images',
        path.join(dir, 'images.f32'),
        '--labels',
        path.join(dir, 'labels.i32'),
        '--threads',
        String(threads),
        '--attacks',
        JSON.stringify(chosen.map((a) => ({ id: a.id, options: a.options }))),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    peer =
      r.status === 0
        ? JSON.parse(r.stdout.trim().split('\n').pop())
        : { missing: `torch_attacks.py failed: ${r.stderr.trim().slice(-500)}` };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const rows = chosen.map((a) => {
    const o = ours[a.id];
    const t = peer.attacks?.[a.id];
    const row = {
      attack: a.id,
      options: a.options,
      unit: a.unit,
      oursSamplesPerS: o.attacked / o.seconds,
      oursWorkPerS: o.work / o.seconds,
      oursFooled: `${o.fooled}/${o.attacked}`,
    };
    if (t) {
      Object.assign(row, {
        torchSamplesPerS: t.attacked / t.seconds,
        torchWorkPerS: t.work / t.seconds,
        torchFooled: `${t.fooled}/${t.attacked}`,
        samplesRatio: o.attacked / o.seconds / (t.attacked / t.seconds),
        workRatio: o.work / o.seconds / (t.work / t.seconds),
      });
    }
    return row;
  });
  const report = {
    processor: processor(),
    cores: os.cpus().length,
    threads,
    model: path.relative(root, modelFile),
    samples,
    peer: peer.missing ?? `PyTorch ${peer.torch} (${peer.threads} threads)`,
    rows,
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`${report.processor} (${report.cores} logical CPUs), ${threads} threads; ${report.model}, first ${samples} test images`);
  console.log(`peer: ${report.peer}`);
  for (const r of rows) console.log(`${r.attack}: ${JSON.stringify(r.options)}`);
  const f = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  console.log(
    '| attack | ours samples/s | PyTorch samples/s | ratio | work | ours work/s | PyTorch work/s | ratio | fooled (ours, PyTorch) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.attack} | ${f(r.oursSamplesPerS, 2)} | ${f(r.torchSamplesPerS, 2)} | ${f(r.samplesRatio, 2)} | ${r.unit} | ` +
        `${f(r.oursWorkPerS, 0)} | ${f(r.torchWorkPerS, 0)} | ${f(r.workRatio, 2)} | ${r.oursFooled}, ${r.torchFooled ?? '-'} |`,
    );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
