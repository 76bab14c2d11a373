// npm run bench:attacks: each attack of the table below on the CPU beside PyTorch running the
// same algorithm on the same model and the same images (scripts/torch_attacks.py, Debian's
// python3-torch), same thread count; samples/s of each side, their ratio, the processor.
//
//   node scripts/bench-attacks.js [--model FILE] [--samples 64] [--threads N] [--only square,cw-l2] [--json]
//
// The workload is fixed so that both sides do the same work: Square at a radius where the
// model resists (every sample runs its whole query budget; both sides report their successes,
// which should be near zero), C&W with its whole steps x constants (neither side stops early).
// Needs dist/ (npm run build:ts) and the addon.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const root = path.resolve(__dirname, '..');
const { native } = require(path.join(root, 'dist', 'lib', 'native.js'));
const { Model } = require(path.join(root, 'dist', 'lib', 'model.js'));
const { loadMnist } = require(path.join(root, 'dist', 'lib', 'mnist.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const threads = Number(arg('threads', native.hardwareThreads()));
const samples = Number(arg('samples', 64));
const modelFile = arg('model', path.join(root, 'docs', 'results', 'paper', 'models', 'std.safetensors'));
const python = arg('python', '/usr/bin/python3');
const json = process.argv.includes('--json');
native.setThreads(threads);

// One entry per attack: its fixed settings, our run on a batch, and the peer's name in
// scripts/torch_attacks.py (the same table there).
const ATTACKS = [
  {
    name: 'square',
    settings: { epsilon: 0.05, queries: 300, pInit: 0.8, seed: 0 },
    ours: (model, b, s) => model.square(b.images, b.labels, b.keys, s),
  },
  {
    name: 'cw-l2',
    settings: { steps: 50, searchSteps: 2, learningRate: 0.01, initialConst: 0.001, confidence: 0 },
    ours: (model, b, s) => model.cwL2(b.images, b.labels, s),
  },
];
const only = new Set(arg('only', ATTACKS.map((a) => a.name).join(',')).split(','));

function processor() {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return (text.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0].model;
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

async function main() {
  const model = await Model.load(modelFile, { backend: 'cpu' });
  const data = await loadMnist();
  // The first `samples` test images the model classifies correctly (both sides attack those).
  const predicted = await model.classify(data.test.images.subarray(0, 4 * samples * 784));
  const picked = [];
  for (let i = 0; i < predicted.length && picked.length < samples; i++) if (predicted[i] === data.test.labels[i]) picked.push(i);
  const batch = {
    images: new Float32Array(picked.length * 784),
    labels: Int32Array.from(picked, (i) => data.test.labels[i]),
    keys: Uint32Array.from(picked),
  };
  picked.forEach((i, k) => batch.images.set(data.test.images.subarray(i * 784, (i + 1) * 784), k * 784));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-bench-attacks-'));
  fs.writeFileSync(path.join(dir, 'images.f32'), Buffer.from(batch.images.buffer));
  fs.writeFileSync(path.join(dir, 'labels.i32'), Buffer.from(batch.labels.buffer));
  const rows = [];
  for (const a of ATTACKS.filter((x) => only.has(x.name))) {
    await a.ours(model.nativeModel, batch, a.settings); // warm-up
    const t0 = process.hrtime.bigint();
    const r = await a.ours(model.nativeModel, batch, a.settings);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const oursRow = { samplesPerS: picked.length / seconds, seconds, successes: r.success.reduce((s, v) => s + v, 0) };
    const p = spawnSync(
      python,
      [
        path.join(__dirname, 'torch_attacks.py'),
        '--attack',
        a.name,
        '--model',
        modelFile,
        '--images',
        path.join(dir, 'images.f32'),
        '--labels',
        path.join(dir, 'labels.i32'),
        '--threads',
        String(threads),
        '--settings',
        JSON.stringify(a.settings),
      ],
      { encoding: 'utf8' },
    );
    const peer = p.status === 0 ? JSON.parse(p.stdout.trim().split('\n').pop()) : { missing: p.stderr.trim().split('\n').pop() };
    rows.push({
      attack: a.name,
      settings: a.settings,
      samples: picked.length,
      ours: oursRow,
      torch: peer,
      ratio: peer.samplesPerS ? oursRow.samplesPerS / peer.samplesPerS : undefined,
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const out = { processor: processor(), cores: os.cpus().length, threads, model: path.relative(root, modelFile), rows };
  if (json) {
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  console.log(`processor: ${out.processor} (${out.cores} logical CPUs), ${threads} threads; model ${out.model}`);
  for (const r of rows) {
    const t =
      r.torch.samplesPerS !== undefined
        ? `PyTorch ${r.torch.samplesPerS.toFixed(2)} samples/s (${r.torch.successes} successes, torch ${r.torch.torch})`
        : `PyTorch: ${r.torch.missing}`;
    console.log(
      `${r.attack} ${JSON.stringify(r.settings)}, ${r.samples} samples: tempered ${r.ours.samplesPerS.toFixed(2)} samples/s (${r.ours.successes} successes); ${t}` +
        (r.ratio ? `; ratio ${r.ratio.toFixed(2)}x` : ''),
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
