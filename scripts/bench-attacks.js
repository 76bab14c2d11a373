#!/usr/bin/env node
// npm run bench:attacks: each attack of the table ATTACKS below on the CPU, ours (runAttack)
// beside PyTorch running the same algorithm (scripts/torch_attacks.py, Debian's python3-torch)
// on the same model file and the same test images, same epsilon and steps, same thread count,
// in this one run. Prints samples/s and gradient steps/s of each side and their ratio, and
// the processor.
//
//   node scripts/bench-attacks.js [--model FILE] [--samples N] [--epsilon E] [--steps S]
//                                 [--threads N] [--only a,b] [--json]
//
// Samples stop at their first misclassified iterate on both sides, and the random starts
// differ (counter-based here, torch.rand there), so the work per sample can differ a little:
// steps/s (gradient steps actually taken, per second) is the like-for-like figure.
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

// One entry per attack: its registry id and options; torch_attacks.py has the same ids.
const ATTACKS = [
  { id: 'apgd-ce', options: { epsilon, steps } },
  { id: 'apgd-dlr', options: { epsilon, steps } },
  { id: 'apgd-t', options: { epsilon, steps } },
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
    ours[a.id] = {
      seconds: secs,
      attacked: attacked.length,
      fooled: r.summary.successes,
      steps: attacked.reduce((s, x) => s + x.pixels, 0),
    };
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
        '--epsilon',
        String(epsilon),
        '--steps',
        String(steps),
        '--only',
        chosen.map((a) => a.id).join(','),
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
      oursSamplesPerS: o.attacked / o.seconds,
      oursStepsPerS: o.steps / o.seconds,
      oursFooled: `${o.fooled}/${o.attacked}`,
    };
    if (t) {
      Object.assign(row, {
        torchSamplesPerS: t.attacked / t.seconds,
        torchStepsPerS: t.steps / t.seconds,
        torchFooled: `${t.fooled}/${t.attacked}`,
        samplesRatio: o.attacked / o.seconds / (t.attacked / t.seconds),
        stepsRatio: o.steps / o.seconds / (t.steps / t.seconds),
      });
    }
    return row;
  });
  const report = {
    processor: processor(),
    threads,
    model: path.relative(root, modelFile),
    samples,
    epsilon,
    steps,
    peer: peer.missing ?? `PyTorch ${peer.torch} (${peer.threads} threads)`,
    rows,
  };
  if (json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`${report.processor}, ${threads} threads; ${report.model}, first ${samples} test images, eps ${epsilon}, ${steps} steps`);
  console.log(`peer: ${report.peer}`);
  const f = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
  console.log('| attack | ours samples/s | PyTorch samples/s | ratio | ours steps/s | PyTorch steps/s | ratio | fooled (ours, PyTorch) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.attack} | ${f(r.oursSamplesPerS)} | ${f(r.torchSamplesPerS)} | ${f(r.samplesRatio, 2)} | ` +
        `${f(r.oursStepsPerS, 0)} | ${f(r.torchStepsPerS, 0)} | ${f(r.stepsRatio, 2)} | ${r.oursFooled}, ${r.torchFooled ?? '-'} |`,
    );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
