#!/usr/bin/env node
// The steps of the GPU check (run.sh), as a plain Node script over the compiled project: no
// jest, no TypeScript. Each step compares the CUDA backend with the CPU backend on the same
// inputs; without a device (--mode no-device) it runs the CPU side (a and b in full, c and d
// at smoke size) and checks what can be checked there.
//
//   node check.js info
//   node check.js a|a-own|b|c|d --mode device|no-device --result FILE [--python PY] [--work DIR]
//
// Tolerances (element i passes iff |cuda_i - cpu_i| <= atol + rtol |cpu_i|, atol relative to
// the tensor's largest |cpu| value), as test/cuda-parity.test.ts:
//   activations, gradients, parameters after an SGD step, input gradients: 1e-5, 1e-4
//   losses (attack losses, the sweep): 1e-4, 1e-3
//   Algorithms 1-4 (float64 xent and margin, 16 test images): the same success flag and final
//     prediction for every image; the same pixel path for at least 14 of 16 (a near-tie in
//     the saliency may pick another pixel within float rounding)
//   training (b): per-step loss within 1e-3 relative for the first 10 of 200 steps; the mean
//     loss of the last 50 steps within 5e-2 relative (rounding differences grow through the
//     updates)
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

// The unpacked bundle (checks/ beside dist/), or the repository (scripts/gpu-bundle/).
const app = fs.existsSync(path.join(__dirname, '..', 'dist')) ? path.resolve(__dirname, '..') : path.resolve(__dirname, '..', '..');
const { native } = require(path.join(app, 'dist', 'lib', 'native.js'));
const { loadMnist } = require(path.join(app, 'dist', 'lib', 'mnist.js'));

const args = process.argv.slice(2);
const step = args[0];
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}
const mode = option('--mode', 'device');
const onDevice = mode === 'device';
const result = { step, mode, checks: [] };
let failures = 0;

function record(name, ok, detail) {
  result.checks.push({ name, ok, ...detail });
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail && detail.text ? `: ${detail.text}` : ''}`);
}

function maxAbs(a) {
  let m = 0;
  for (const v of a) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return m;
}

// Worst |cuda - cpu| / allowance; NaN must match NaN.
function compare(name, cuda, cpu, atolScale, rtol) {
  const atol = atolScale * maxAbs(cpu);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < cpu.length; i++) {
    const a = cuda[i];
    const b = cpu[i];
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) {
        worst = Infinity;
        at = i;
      }
      continue;
    }
    const err = Math.abs(a - b);
    const ratio = err === 0 ? 0 : err / (atol + rtol * Math.abs(b) || Number.MIN_VALUE);
    if (ratio > worst) {
      worst = ratio;
      at = i;
    }
  }
  const ok = cuda.length === cpu.length && worst <= 1;
  record(name, ok, { worst, text: `worst error/allowance ${worst.toPrecision(3)}${at >= 0 ? ` at ${at} (cuda ${cuda[at]}, cpu ${cpu[at]})` : ''}` });
}

function finite(name, values) {
  let bad = 0;
  for (const v of values) if (!Number.isFinite(v)) bad++;
  record(name, bad === 0, { text: `${values.length} values${bad ? `, ${bad} not finite` : ', all finite'}` });
}

function info() {
  const list = native.backends();
  const cuda = list.find((b) => b.name === 'cuda');
  const lines = list.map((b) => `${b.name}: ${b.available ? `available (${b.device})` : `unavailable: ${b.reason}`}`);
  if (cuda && cuda.libraries) lines.push(`cuDNN / cuBLAS files: ${cuda.libraries}`);
  // Torch's cuDNN present but the plugin on its own kernels: the libraries were not picked up.
  const libsFound = cuda && /cuDNN: \/\S+/.test(cuda.libraries || '');
  const ownConv = cuda && cuda.available && /own (conv )?kernels/.test(cuda.device) && !process.env.TEMPERED_CUDA_KERNELS;
  const problem = libsFound && ownConv ? 'cuDNN was found but the plugin runs its own convolution kernels' : null;
  if (problem) lines.push(`PROBLEM: ${problem}`);
  process.stdout.write(JSON.stringify({ device: Boolean(cuda && cuda.available), cuda, cpu: list[0], problem, lines }));
}

async function testImages(count) {
  const data = await loadMnist();
  const images = data.test.images.subarray(0, count * 784);
  const labels = data.test.labels.subarray(0, count);
  return { data, images: Float32Array.from(images), labels: Int32Array.from(labels) };
}

// Both backends' models with the same parameters (the CPU's, seed 7, after a few steps of
// training so that the attacks have a real network to work on).
async function models(data) {
  const cpu = native.createModel('cpu', 7);
  const train = await native.createDataset('cpu', data.train.images.subarray(0, 4096 * 784), data.train.labels.subarray(0, 4096));
  await cpu.trainSteps(train, Int32Array.from({ length: 4096 }, (_, i) => i), 128, { learningRate: 0.05, momentum: 0.5 }, 0);
  train.dispose();
  const cuda = onDevice ? native.createModel('cuda', 7) : null;
  if (cuda) cuda.setParameters(cpu.getParameters());
  return { cpu, cuda };
}

async function parity() {
  const { data, images, labels } = await testImages(16);
  const { cpu, cuda } = await models(data);
  const soft = new Float32Array(16 * 10);
  for (let i = 0; i < 16; i++) for (let j = 0; j < 10; j++) soft[i * 10 + j] = j === labels[i] ? 0.82 : 0.02;
  // trace: every activation and gradient (convolutions forward / backward data / backward
  // weights, dense, pooling, ReLU, dropout, softmax cross-entropy) at T = 1 and 20, hard and soft.
  for (const T of [1, 20])
    for (const useSoft of [false, true]) {
      const cfg = { temperature: T, dropoutRate: 0.5, dropoutSeed: 11, softTargets: useSoft };
      const a = await cpu.trace(images, labels, useSoft ? soft : null, cfg, 3);
      const tag = `T=${T} ${useSoft ? 'soft' : 'hard'} targets`;
      if (!cuda) {
        for (const [k, v] of Object.entries(a)) finite(`cpu trace ${tag}: ${k}`, v);
        continue;
      }
      const b = await cuda.trace(images, labels, useSoft ? soft : null, cfg, 3);
      for (const k of Object.keys(a)) compare(`trace ${tag}: ${k}`, b[k], a[k], 1e-5, 1e-4);
    }
  // One SGD step (Nesterov) from the same parameters and velocity.
  {
    const mk = (backend) => native.createDataset(backend, images, labels);  // a Promise
    const idx = Int32Array.from({ length: 16 }, (_, i) => i);
    const cfg = { learningRate: 0.1, momentum: 0.5, l2: 0.01, temperature: 20 };
    const ds = await mk('cpu');
    const p0 = cpu.getParameters();
    const v0 = cpu.getVelocity();
    await cpu.trainSteps(ds, idx, 16, cfg, 0);
    const pc = cpu.getParameters();
    if (cuda) {
      const dg = await mk('cuda');
      cuda.setParameters(p0);
      cuda.setVelocity(v0);
      await cuda.trainSteps(dg, idx, 16, cfg, 0);
      compare('SGD step: parameters', cuda.getParameters(), pc, 1e-5, 1e-4);
      compare('SGD step: velocity', cuda.getVelocity(), cpu.getVelocity(), 1e-5, 1e-4);
      dg.dispose();
      cuda.setParameters(pc);
    } else {
      finite('cpu SGD step: parameters', pc);
    }
    ds.dispose();
  }
  // Input gradients, attack losses and the sweep at both precisions and both losses.
  const specs = [
    { loss: 'xent', precision: 'float32', temperature: 1 },
    { loss: 'xent', precision: 'float64', temperature: 20 },
    { loss: 'margin', precision: 'float32', temperature: 1 },
    { loss: 'margin', precision: 'float64', temperature: 1 },
  ];
  const skip = new Uint8Array(4 * 784);
  for (let p = 0; p < skip.length; p += 5) skip[p] = 1;
  for (const spec of specs) {
    const tag = `${spec.loss} ${spec.precision} T=${spec.temperature}`;
    const g = await cpu.inputGradient(images, labels, spec);
    const s = await cpu.sweep(images.subarray(0, 4 * 784), labels.subarray(0, 4), spec, skip);
    if (!cuda) {
      finite(`cpu input gradient ${tag}`, g.gradient);
      finite(`cpu sweep base ${tag}`, s.base);
      continue;
    }
    const gg = await cuda.inputGradient(images, labels, spec);
    compare(`input gradient ${tag}`, gg.gradient, g.gradient, 1e-5, 1e-4);
    compare(`input-gradient loss ${tag}`, gg.loss, g.loss, 1e-4, 1e-3);
    const sg = await cuda.sweep(images.subarray(0, 4 * 784), labels.subarray(0, 4), spec, skip);
    compare(`sweep losses ${tag}`, sg.losses, s.losses, 1e-4, 1e-3);
    compare(`sweep base ${tag}`, sg.base, s.base, 1e-4, 1e-3);
  }
  // Algorithms 1-4 on the 16 test images, where the CPU's loss is well conditioned.
  for (const algorithm of [1, 2, 3, 4])
    for (const spec of [specs[1], specs[3]]) {
      const cfg = { ...spec, algorithm, budget: 20 };
      const tag = `Algorithm ${algorithm} (${spec.loss} ${spec.precision})`;
      const a = await cpu.attack(images, labels, cfg);
      if (!cuda) {
        record(`cpu ${tag}`, a.attacked.length === 16, { text: `${a.success.reduce((x, y) => x + y, 0)} of 16 succeed` });
        continue;
      }
      const b = await cuda.attack(images, labels, cfg);
      let sameOutcome = 0;
      let samePath = 0;
      for (let i = 0; i < 16; i++) {
        if (a.success[i] === b.success[i] && a.finalPrediction[i] === b.finalPrediction[i]) sameOutcome++;
        if (a.l0[i] === b.l0[i]) samePath++;
      }
      const samePaths = a.path.every((v, i) => v === b.path[i]) ? 16 : samePath;
      record(tag, sameOutcome === 16 && samePaths >= 14, { text: `same outcome ${sameOutcome}/16, same path ${samePaths}/16` });
    }
  cpu.dispose();
  if (cuda) cuda.dispose();
}

async function training() {
  const data = await loadMnist();
  const steps = 200;
  const batch = 128;
  const n = steps * batch;
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  const cfg = { learningRate: 0.1, momentum: 0.5, l2: 0.0005, temperature: 1, dropoutRate: 0.5, dropoutSeed: 3 };
  const run = async (backend) => {
    const model = native.createModel(backend, 5);
    const ds = await native.createDataset(backend, data.train.images.subarray(0, n * 784), data.train.labels.subarray(0, n));
    const t0 = Date.now();
    const r = await model.trainSteps(ds, idx, batch, cfg, 0);
    const seconds = (Date.now() - t0) / 1000;
    ds.dispose();
    model.dispose();
    return { loss: Array.from(r.lossSum, (s, i) => s / r.samples[i]), seconds };
  };
  const a = await run('cpu');
  result.cpu = { seconds: a.seconds, first: a.loss[0], last: a.loss[steps - 1] };
  const lastMean = (l) => l.slice(-50).reduce((x, y) => x + y, 0) / 50;
  if (!onDevice) {
    finite(`cpu: ${steps} training steps, loss ${a.loss[0].toFixed(3)} -> ${a.loss[steps - 1].toFixed(3)} in ${a.seconds} s`, a.loss);
    record('cpu: the loss falls', lastMean(a.loss) < a.loss[0], { text: `mean of the last 50 steps ${lastMean(a.loss).toFixed(4)}` });
    return;
  }
  const b = await run('cuda');
  result.cuda = { seconds: b.seconds, first: b.loss[0], last: b.loss[steps - 1] };
  let worst = 0;
  for (let i = 0; i < 10; i++) worst = Math.max(worst, Math.abs(b.loss[i] - a.loss[i]) / Math.abs(a.loss[i]));
  record('training: first 10 steps within 1e-3', worst <= 1e-3, { text: `worst relative difference ${worst.toExponential(2)}` });
  const rel = Math.abs(lastMean(b.loss) - lastMean(a.loss)) / lastMean(a.loss);
  record('training: mean loss of steps 151-200 within 5e-2', rel <= 5e-2,
    { text: `cpu ${lastMean(a.loss).toFixed(4)}, cuda ${lastMean(b.loss).toFixed(4)} (${rel.toExponential(2)}); cpu ${a.seconds} s, cuda ${b.seconds} s` });
}

function bench() {
  const python = option('--python', '');
  const backend = onDevice ? 'cuda' : 'cpu';
  const seconds = onDevice ? '4' : '0.3';
  const argv = [path.join(app, 'scripts', 'bench.js'), '--backend', backend, '--seconds', seconds, '--only', 'train,forward,sweep'];
  if (python) argv.push('--python', python);
  else console.log('PyTorch: missing (no python with torch found); the peer column stays empty');
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.stdout.write(r.stdout || '');
  result.table = r.stdout;
  record(`benchmark table (${backend}${onDevice ? '' : ', smoke size'})`, r.status === 0, { text: `exit status ${r.status}` });
}

function reproduce() {
  const work = option('--work', fs.mkdtempSync('/tmp/tempered-reproduce-'));
  const out = path.join(work, 'reproduce');
  const argv = [path.join(app, 'bin', 'tempered.js'), 'reproduce', '--profile', 'quick', '--out', out, '--quiet',
    '--backend', onDevice ? 'cuda' : 'cpu'];
  // Smoke size on the CPU: one epoch on 1,024 images, 2 samples, a small budget.
  if (!onDevice) argv.push('--epochs', '1', '--train-limit', '1024', '--samples', '2', '--alg4-samples', '1', '--budget', '8', '--pictures', '1');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  const seconds = (Date.now() - t0) / 1000;
  result.seconds = seconds;
  const wrote = fs.existsSync(path.join(out, 'results.json'));
  record(`reproduce --profile quick${onDevice ? '' : ' (smoke size, CPU)'}`, r.status === 0 && wrote,
    { text: `exit status ${r.status}, ${seconds.toFixed(1)} s wall, results.json ${wrote ? 'written' : 'missing'}` });
}

async function main() {
  if (step === 'info') return info();
  if (onDevice) {
    const cuda = native.backends().find((b) => b.name === 'cuda');
    console.log(`cuda: ${cuda.device}\nlibraries: ${cuda.libraries || ''}`);
  }
  if (step === 'a' || step === 'a-own') await parity();
  else if (step === 'b') await training();
  else if (step === 'c') bench();
  else if (step === 'd') reproduce();
  else throw new Error(`unknown step '${step}'`);
  const file = option('--result', '');
  result.failures = failures;
  if (file) fs.writeFileSync(file, JSON.stringify(result));
  console.log(`${step}: ${result.checks.length - failures} passed, ${failures} failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exitCode = 1;
});
