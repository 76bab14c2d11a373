#!/usr/bin/env node
// npm run bench: our throughput beside PyTorch's (Debian's python3-torch) and ONNX Runtime's
// (onnxruntime-node, CPU), same network, same thread count, same batch sizes, measured in
// this one run, printed as ratios.
//
//   node scripts/bench.js [--threads N] [--seconds S] [--backend cpu|cuda] [--json] [--only a,b]
//                         [--arch NAME|FILE.json] [--also NAME,...|none]
//
// The main table is for --arch (default paper-mnist; the sweep and ONNX Runtime rows for
// 28x28x1 networks only); then one table per --also architecture (default cw-cifar) of
// training, forward and input gradient beside PyTorch running the same spec.
//
// Each figure is the median of 5 timed runs after a warm-up; ours is measured before and
// after the peers and the two medians pooled, so a noisy neighbour hurts every side alike.
// Install PyTorch with `apt-get install python3-torch` (it also exports the model to ONNX
// for ONNX Runtime); without it our numbers print alone.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { onnxPeer } = require('./onnx_peer');
const root = path.resolve(__dirname, '..');
const { native } = require(path.join(root, 'dist', 'lib', 'native.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const threads = Number(arg('threads', native.hardwareThreads()));
const seconds = Number(arg('seconds', 5));
const backend = arg('backend', 'cpu');
const json = process.argv.includes('--json');
const only = new Set(arg('only', 'train,forward,input_gradient,sweep').split(','));
const modelFile = arg('model', undefined);
const scaling = process.argv.includes('--scaling');
// Multiply-adds of one forward pass (docs/algorithms.md: 9.95 M); a training step costs three
// passes' worth (forward, backward data, backward weights).
const FORWARD_FLOPS =
  2 * (26 * 26 * 32 * 9 + 24 * 24 * 32 * 288 + 10 * 10 * 64 * 288 + 8 * 8 * 64 * 576 + 1024 * 200 + 200 * 200 + 200 * 10);
const python = arg('python', '/usr/bin/python3');
const { resolveArch, archName } = require(path.join(root, 'dist', 'lib', 'arch.js'));
const mainArch = resolveArch(arg('arch', 'paper-mnist'));
const mainIsPaper = archName(mainArch) === 'paper-mnist';
const alsoArchs = arg('also', mainIsPaper ? 'cw-cifar' : 'none')
  .split(',')
  .filter((a) => a && a !== 'none');
// Values per image and classes of a spec.
const sizeOf = (arch) => arch.input.channels * arch.input.height * arch.input.width;
const classesOf = (arch) => arch.layers[arch.layers.length - 1].units;

native.setThreads(threads);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// units/s of each [fn, units] contender, `reps` timed runs each after a warm-up; the
// contenders take turns run by run, so a change of load hits them alike.
async function rates(contenders, reps = 5) {
  for (const [fn] of contenders) for (let i = 0; i < 2; i++) await fn();
  const out = contenders.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (const [c, [fn, units]] of contenders.entries()) {
      let count = 0;
      const t0 = process.hrtime.bigint();
      let elapsed = 0;
      do {
        await fn();
        count++;
        elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      } while (elapsed < seconds / reps);
      out[c].push((count * units) / elapsed);
    }
  }
  return out;
}

async function rate(fn, units) {
  return (await rates([[fn, units]]))[0];
}

function randomImages(n, size = 784) {
  const a = new Float32Array(n * size);
  for (let i = 0; i < a.length; i++) a[i] = Math.random();
  return a;
}

// The sweep's cost depends on the image (pixels already at 0 or 1 cost nothing) and on the
// weights (a pixel whose change dies in a max-pool stops early), so it runs on real test
// images through a trained model: --model FILE, or one trained here for an epoch on 10,000
// images. PyTorch's brute force costs the same whatever the images.
let sweepSetup;
async function sweepInputs() {
  if (sweepSetup) return sweepSetup;
  const { loadMnist } = require(path.join(root, 'dist', 'lib', 'mnist.js'));
  const { Model } = require(path.join(root, 'dist', 'lib', 'model.js'));
  const data = await loadMnist();
  let model;
  if (modelFile) {
    model = (await Model.load(modelFile, { backend })).nativeModel;
  } else {
    model = native.createModel(backend, 2);
    const n = 10000;
    const ds = await native.createDataset(backend, data.train.images.subarray(0, n * 784), data.train.labels.subarray(0, n));
    await model.trainSteps(
      ds,
      Int32Array.from({ length: n }, (_, i) => i),
      128,
      { temperature: 1 },
      0,
    );
  }
  const count = 16;
  sweepSetup = { model, images: data.test.images.slice(0, count * 784), labels: data.test.labels.slice(0, count), count };
  return sweepSetup;
}

async function ours(arch = mainArch, measures = only) {
  const results = {};
  const model = native.createModel(backend, 1, arch);
  const size = sizeOf(arch);
  const classes = classesOf(arch);
  if (measures.has('train')) {
    const n = 128 * 16;
    const ds = await native.createDataset(
      backend,
      randomImages(n, size),
      Int32Array.from({ length: n }, (_, i) => i % classes),
      null,
      size,
      classes,
    );
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    let step = 0;
    results.train_samples_per_s = await rate(async () => {
      await model.trainSteps(ds, idx, 128, { temperature: 1 }, step);
      step += 16;
    }, n);
  }
  if (measures.has('forward')) {
    const x = randomImages(128, size);
    results.forward_images_per_s = await rate(() => model.predict(x), 128);
    // One image at a time: the latency a user of a single query sees (call overhead included).
    const x1 = randomImages(1, size);
    results.forward1_images_per_s = await rate(() => model.predict(x1), 1);
  }
  if (measures.has('input_gradient')) {
    const x = randomImages(128, size);
    const y = Int32Array.from({ length: 128 }, (_, i) => i % classes);
    results.input_gradient_samples_per_s = await rate(() => model.inputGradient(x, y, { loss: 'xent', precision: 'float32' }), 128);
  }
  if (measures.has('sweep') && mainIsPaper && arch === mainArch) {
    const s = await sweepInputs();
    results.sweeps_per_s = await rate(() => s.model.sweep(s.images, s.labels, { loss: 'xent', precision: 'float32' }, null), s.count);
  }
  return results;
}

function peer(arch = mainArch, measures = only) {
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return { missing: `PyTorch not found for ${python} (install it with: apt-get install python3-torch)` };
  // The spec travels as a file: PyTorch builds the same network from it (scripts/torch_net.py).
  const specFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-bench-')), 'arch.json');
  fs.writeFileSync(specFile, JSON.stringify(arch));
  const r = spawnSync(
    python,
    [
      path.join(__dirname, 'torch_bench.py'),
      '--threads',
      String(threads),
      '--seconds',
      String(seconds),
      '--device',
      backend,
      '--only',
      [...measures].filter((m) => m !== 'sweep' || (mainIsPaper && arch === mainArch)).join(','),
      '--arch',
      specFile,
    ],
    { encoding: 'utf8' },
  );
  fs.rmSync(path.dirname(specFile), { recursive: true, force: true });
  if (r.status !== 0) return { missing: `the PyTorch benchmark failed: ${r.stderr.trim().split('\n').pop()}` };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// ONNX Runtime on the CPU, only beside our CPU backend.
async function ortPeer() {
  if (backend !== 'cpu') return { missing: 'the ONNX Runtime peer runs on the CPU only (--backend cpu)' };
  if (!mainIsPaper) return { missing: "the ONNX Runtime peer runs the paper's network only" };
  if (!only.has('forward') && !only.has('sweep')) return { missing: 'ONNX Runtime is measured for the forward pass and the sweep only' };
  // Ours takes turns with ONNX Runtime (same process): the ratio is the median of the
  // ratios of neighbouring runs.
  const ours = {};
  if (only.has('forward')) {
    const model = native.createModel(backend, 1);
    const x = randomImages(128);
    ours.forward_images_per_s = [() => model.predict(x), 128];
    const x1 = randomImages(1);
    ours.forward1_images_per_s = [() => model.predict(x1), 1];
  }
  if (only.has('sweep')) {
    const s = await sweepInputs();
    ours.sweeps_per_s = [() => s.model.sweep(s.images, s.labels, { loss: 'xent', precision: 'float32' }, null), s.count];
  }
  return onnxPeer({ python, threads, only, rates, ours });
}

// /proc/cpuinfo's fields for the first processor, and the number of distinct physical cores.
function cpuinfo() {
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return { cores: os.cpus().length };
  }
  const blocks = text.split(/\n\s*\n/).filter((b) => b.trim());
  const field = (block, name) => (block.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm')) || [])[1];
  const cores = new Set(blocks.map((b) => `${field(b, 'physical id')}/${field(b, 'core id') ?? b}`)).size;
  const first = blocks[0] || '';
  return {
    vendor: field(first, 'vendor_id'),
    family: Number(field(first, 'cpu family')),
    model: Number(field(first, 'model')),
    mhz: Number(field(first, 'cpu MHz')),
    cores: cores || os.cpus().length,
  };
}

// fp32 FMA pipes per core and their width, by processor: assumed from the vendors' and
// reviewers' descriptions, not measured (the measured peak is the check).
function fmaUnits(info) {
  const { vendor, family, model } = info;
  if (vendor === 'AuthenticAMD' && family === 0x17)
    return model < 0x30
      ? { pipes: 2, bits: 128, what: 'Zen 1: two 128-bit FMA pipes' }
      : { pipes: 2, bits: 256, what: 'Zen 2: two 256-bit FMA pipes' };
  if (vendor === 'AuthenticAMD' && family === 0x19) {
    const zen4 = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) || (model >= 0xa0 && model <= 0xaf);
    return zen4
      ? { pipes: 2, bits: 256, what: 'Zen 4: two 256-bit FMA pipes; a 512-bit FMA takes both' }
      : { pipes: 2, bits: 256, what: 'Zen 3: two 256-bit FMA pipes' };
  }
  if (vendor === 'AuthenticAMD' && family === 0x1a)
    return { pipes: 2, bits: 512, what: 'Zen 5: two 512-bit FMA pipes (256-bit on some mobile parts)' };
  if (vendor === 'GenuineIntel')
    return { pipes: 2, bits: 512, what: 'Intel: two FMA ports, 512-bit on server parts (one on some Xeon Silver/Bronze and client parts)' };
  return { pipes: 2, bits: 256, what: 'unknown processor: two 256-bit FMA pipes assumed' };
}

// cores x FMA pipes x lanes x 2 x clock, with the clock the peak run measured.
function theoreticalPeak(peak) {
  const isaBits = { avx512: 512, avx2: 256 }[peak.isa];
  const info = cpuinfo();
  if (!isaBits) return { missing: `the ${peak.isa} kernels have no FMA instruction`, cpuinfoMhz: info.mhz };
  if (!(peak.clockGhz > 0)) return { missing: 'the clock could not be measured here', cpuinfoMhz: info.mhz };
  const units = fmaUnits(info);
  const cores = Math.min(peak.threads, info.cores);
  const lanes = Math.min(isaBits, units.bits) / 32;
  return {
    gflops: cores * units.pipes * lanes * 2 * peak.clockGhz,
    cores,
    pipes: units.pipes,
    lanes,
    clockGhz: peak.clockGhz,
    assumed: units.what,
    cpuinfoMhz: info.mhz,
  };
}

const ROWS = [
  ['train_samples_per_s', 'training, batch 128', 'samples/s'],
  ['forward_images_per_s', 'forward, batch 128', 'images/s'],
  ['forward1_images_per_s', 'forward, batch 1', 'images/s'],
  ['input_gradient_samples_per_s', 'input gradient, batch 128', 'samples/s'],
  ['sweeps_per_s', 'Algorithm-2 sweep (1,568 perturbed losses)', 'sweeps/s'],
];

async function layerProfile() {
  if (backend !== 'cpu') return undefined;
  const peak = await native.fmaPeak(3);
  const ops = await native.profileTraining('cpu', 128, 20);
  // A prediction's operations, with the fusions inference makes (a convolution and its pool,
  // conv1 into conv2).
  const forwardOps = await native.profileForward('cpu', 128, 20);
  const theoretical = theoreticalPeak(peak);
  const total = ops.reduce((t, o) => t + o.seconds, 0);
  const convs = ops.filter((o) => o.op.startsWith('conv3x3')).sort((x, y) => y.seconds - x.seconds);
  const convFlops = convs.reduce((t, o) => t + o.flops, 0);
  const convSeconds = convs.reduce((t, o) => t + o.seconds, 0);
  const forwardTotal = forwardOps.reduce((t, o) => t + o.seconds, 0);
  return { peak, theoretical, ops, total, convs, convGflops: convFlops / convSeconds / 1e9, forwardOps, forwardTotal };
}

async function scalingTable() {
  const rows = [];
  const counts = [];
  for (let t = 1; t < native.hardwareThreads(); t *= 2) counts.push(t);
  counts.push(native.hardwareThreads());
  for (const t of counts) {
    native.setThreads(t);
    const r = await ours();
    rows.push({ threads: t, ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) });
  }
  native.setThreads(threads);
  return rows;
}

(async () => {
  const a = await ours();
  const torch = peer();
  const ort = await ortPeer();
  const b = await ours();
  const table = [];
  for (const [key, label, unit] of ROWS) {
    if (!(key in a)) continue;
    const mine = median([...a[key], ...b[key]]);
    const theirs = torch[key];
    const onnx = ort[key] ? median(ort[key]) : null;
    const paired = onnx ? median(ort[key].map((t, i) => ort.ours[key][i] / t)) : null;
    table.push({
      measure: label,
      unit,
      tempered: mine,
      pytorch: theirs ?? null,
      ratio: theirs ? mine / theirs : null,
      onnxruntime: onnx,
      ratioOnnxruntime: paired,
    });
  }
  // The other architectures: ours before and after PyTorch running the same spec.
  const archTables = [];
  const archMeasures = new Set([...only].filter((m) => m !== 'sweep'));
  for (const name of alsoArchs) {
    const arch = resolveArch(name);
    const x = await ours(arch, archMeasures);
    const t = peer(arch, archMeasures);
    const y = await ours(arch, archMeasures);
    const rows = [];
    for (const [key, label, unit] of ROWS) {
      if (!(key in x)) continue;
      const mine = median([...x[key], ...y[key]]);
      rows.push({ measure: label, unit, tempered: mine, pytorch: t[key] ?? null, ratio: t[key] ? mine / t[key] : null });
    }
    archTables.push({ arch: name, peer: t.missing ? t.missing : `PyTorch ${t.torch} (${t.threads} threads)`, table: rows });
  }
  // The layer profile and the FLOP figures are the paper network's (profileTraining, FORWARD_FLOPS).
  const profile = mainIsPaper ? await layerProfile() : undefined;
  const scale = scaling ? await scalingTable() : undefined;
  const info = {
    backend,
    device: native.backends().find((x) => x.name === backend).device,
    threads,
    cpuIsa: native.cpuIsa(),
    peer: torch.missing ? torch.missing : `PyTorch ${torch.torch} (${torch.threads} threads${torch.gpu ? `, ${torch.gpu}` : ''})`,
    onnxPeer: ort.missing
      ? ort.missing
      : `ONNX Runtime ${ort.version} (CPU, ${ort.threads} intra-op threads, logits within ${ort.maxLogitDifference.toExponential(1)} and sweep losses within ${ort.maxLossDifference.toExponential(1)} of ours)`,
    arch: arg('arch', 'paper-mnist'),
    seconds,
    table,
    archTables,
    profile,
    scaling: scale,
  };
  if (json) {
    console.log(JSON.stringify(info, null, 2));
    return;
  }
  console.log(`tempered ${native.version()} on ${info.device}, network ${info.arch}`);
  console.log(`peers: ${info.peer}; ${info.onnxPeer}`);
  const num = (x) => (x === null ? '-' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
  const times = (x) => (x === null ? '-' : x.toFixed(2) + 'x');
  console.log('| measure | unit | tempered | PyTorch | ratio | ONNX Runtime | ratio |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of table)
    console.log(
      `| ${r.measure} | ${r.unit} | ${num(r.tempered)} | ${num(r.pytorch)} | ${times(r.ratio)} | ${num(r.onnxruntime)} | ${times(r.ratioOnnxruntime)} |`,
    );
  for (const t of archTables) {
    console.log('');
    console.log(`${t.arch} (the same spec in PyTorch: ${t.peer})`);
    console.log('| measure | unit | tempered | PyTorch | ratio |');
    console.log('|---|---|---:|---:|---:|');
    for (const r of t.table) console.log(`| ${r.measure} | ${r.unit} | ${num(r.tempered)} | ${num(r.pytorch)} | ${times(r.ratio)} |`);
  }
  if (profile) {
    const p = profile.peak.gflops;
    const fwd = table.find((r) => r.measure.startsWith('forward'));
    const trn = table.find((r) => r.measure.startsWith('training'));
    console.log('');
    const th = profile.theoretical;
    const mhz = th.cpuinfoMhz ? `; /proc/cpuinfo says ${th.cpuinfoMhz.toFixed(0)} MHz` : '';
    console.log(`Measured fp32 multiply-add peak: ${p.toFixed(0)} GFLOP/s (${profile.peak.threads} threads, ${profile.peak.isa} kernels)`);
    if (th.missing) console.log(`Theoretical peak: not computed (${th.missing}${mhz})`);
    else
      console.log(
        `Theoretical peak: ${th.gflops.toFixed(0)} GFLOP/s = ${th.cores} cores x ${th.pipes} FMA pipes x ${th.lanes} lanes x 2 x ${th.clockGhz.toFixed(2)} GHz ` +
          `(clock measured with dependent adds on every thread${mhz}; pipes assumed: ${th.assumed}); measured = ${((100 * p) / th.gflops).toFixed(0)}% of it`,
      );
    if (fwd)
      console.log(
        `Forward, batch 128: ${((fwd.tempered * FORWARD_FLOPS) / 1e9).toFixed(0)} GFLOP/s = ${((100 * fwd.tempered * FORWARD_FLOPS) / 1e9 / p).toFixed(0)}% of peak`,
      );
    if (trn)
      console.log(
        `Training, batch 128: ${((trn.tempered * 3 * FORWARD_FLOPS) / 1e9).toFixed(0)} GFLOP/s = ${((100 * trn.tempered * 3 * FORWARD_FLOPS) / 1e9 / p).toFixed(0)}% of peak`,
      );
    console.log(
      `Convolutions in a training step: ${profile.convGflops.toFixed(0)} GFLOP/s = ${((100 * profile.convGflops) / p).toFixed(0)}% of peak`,
    );
    console.log('');
    console.log('| operation (training step, batch 128) | shape | ms per step | GFLOP/s | % of peak |');
    console.log('|---|---|---:|---:|---:|');
    for (const o of [...profile.ops].sort((x, y) => y.seconds - x.seconds).slice(0, 16)) {
      const g = o.flops ? o.flops / o.seconds / 1e9 : 0;
      console.log(
        `| ${o.op} | ${o.shape} | ${((1000 * o.seconds) / 20).toFixed(2)} | ${g ? g.toFixed(0) : '-'} | ${g ? ((100 * g) / p).toFixed(0) + '%' : '-'} |`,
      );
    }
    console.log(`| all operations | | ${((1000 * profile.total) / 20).toFixed(2)} | | |`);
    // FLOPs are the direct convolution's: Winograd does 2.25x fewer, so it can pass 100%.
    console.log('');
    console.log('| operation (prediction, batch 128) | shape | ms per batch | GFLOP/s (direct count) | % of peak |');
    console.log('|---|---|---:|---:|---:|');
    for (const o of [...profile.forwardOps].sort((x, y) => y.seconds - x.seconds)) {
      const g = o.flops ? o.flops / o.seconds / 1e9 : 0;
      console.log(
        `| ${o.op} | ${o.shape} | ${((1000 * o.seconds) / 20).toFixed(2)} | ${g ? g.toFixed(0) : '-'} | ${g ? ((100 * g) / p).toFixed(0) + '%' : '-'} |`,
      );
    }
    console.log(`| all operations | | ${((1000 * profile.forwardTotal) / 20).toFixed(2)} | | |`);
  }
  if (scale) {
    console.log('');
    console.log(
      '| threads | ' +
        ROWS.filter(([k]) => k in scale[0])
          .map(([, l]) => l)
          .join(' | ') +
        ' |',
    );
    console.log(
      '|---:|' +
        ROWS.filter(([k]) => k in scale[0])
          .map(() => '---:')
          .join('|') +
        '|',
    );
    for (const r of scale)
      console.log(
        `| ${r.threads} | ` +
          ROWS.filter(([k]) => k in r)
            .map(([k]) => r[k].toFixed(1))
            .join(' | ') +
          ' |',
      );
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
