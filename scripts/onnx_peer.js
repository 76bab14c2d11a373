// The ONNX Runtime peer of `npm run bench` (onnxruntime-node, its bundled CPU provider): the
// same network with the same weights, exported to ONNX by scripts/onnx_export.py (PyTorch), run
// at the bench's thread count. Its logits are checked against ours before anything is timed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
// Largest |difference| accepted between the peer's logits or sweep losses and ours: both
// compute in fp32, in different orders, on values of order 1.
const TOLERANCE = 1e-5;

function lastLine(text) {
  return (text || '').trim().split('\n').pop();
}

// Per-sample cross-entropy of logits [n * 10] against one label, as PyTorch's brute force
// returns it (so both peers do the same work after the forward pass).
function crossEntropy(logits, label) {
  const n = logits.length / 10;
  const loss = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let k = 0; k < 10; k++) max = Math.max(max, logits[i * 10 + k]);
    let sum = 0;
    for (let k = 0; k < 10; k++) sum += Math.exp(logits[i * 10 + k] - max);
    loss[i] = Math.log(sum) + max - logits[i * 10 + label];
  }
  return loss;
}

// images [n * 784] in [0, 1] from a seeded linear congruential generator.
function seededImages(n, seed) {
  const a = new Float32Array(n * 784);
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s >>> 8) / 16777216;
  }
  return a;
}

/**
 * Measures ONNX Runtime's forward images/s at batch 128 and 1 and its brute-force Algorithm-2 sweeps/s
 * with the bench's `rates`, taking turns with ours: `ours` maps each of forward_images_per_s,
 * forward1_images_per_s and sweeps_per_s to measure to our [fn, units]. Returns { version, threads, maxLogitDifference,
 * maxLossDifference, forward_images_per_s?, sweeps_per_s?, ours: {same keys} } (arrays of timed
 * runs, ours[key][i] beside key[i]), or { missing: why } when the peer cannot run.
 */
async function onnxPeer({ python, threads, rates, ours }) {
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    return { missing: `onnxruntime-node does not load: ${lastLine(e.message)}` };
  }
  const version = require('onnxruntime-node/package.json').version;
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0)
    return { missing: `ONNX Runtime ${version} not run: the model is exported to ONNX with PyTorch, not found for ${python}` };
  const { Model } = require(path.join(root, 'dist', 'lib', 'model.js'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-bench-onnx-'));
  let session;
  try {
    const reference = Model.create({ seed: 1, backend: 'cpu' });
    const weights = path.join(dir, 'model.safetensors');
    const onnxFile = path.join(dir, 'model.onnx');
    await reference.save(weights);
    const exported = spawnSync(python, [path.join(__dirname, 'onnx_export.py'), weights, onnxFile], { encoding: 'utf8' });
    if (exported.status !== 0) return { missing: `the ONNX export failed: ${lastLine(exported.stderr)}` };
    session = await ort.InferenceSession.create(onnxFile, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Its threads would otherwise spin after every run and take the cores from whichever
      // side runs next (ours runs in turn with it); its own speed did not change without it.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const run = async (images, n) => (await session.run({ images: new ort.Tensor('float32', images, [n, 1, 28, 28]) })).logits.data;

    // Algorithm 2 by brute force, as PyTorch's peer does it: one image's 1,568 perturbations
    // (every pixel set to 1, then to 0) built and run as one batch, and the loss of each.
    const base = seededImages(1, 11);
    const label = 3;
    const batch = new Float32Array(1568 * 784);
    const sweep = async () => {
      for (let p = 0; p < 784; p++) {
        batch.set(base, p * 784);
        batch[p * 784 + p] = 1;
        batch.set(base, (784 + p) * 784);
        batch[(784 + p) * 784 + p] = 0;
      }
      return crossEntropy(await run(batch, 1568), label);
    };

    // The same logits and sweep losses as ours, or no timing: a peer that computes something
    // else proves nothing.
    const x128 = seededImages(128, 7);
    const maxDifference = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    const maxLogitDifference = maxDifference(await reference.predict(x128), await run(x128, 128));
    const ourSweep = await reference.nativeModel.sweep(base, Int32Array.of(label), { loss: 'xent', precision: 'float32' }, null);
    const maxLossDifference = maxDifference(ourSweep.losses, await sweep());
    reference.dispose();
    if (!(maxLogitDifference <= TOLERANCE && maxLossDifference <= TOLERANCE))
      return {
        missing:
          `ONNX Runtime ${version} does not compute what we do: logits differ by up to ${maxLogitDifference.toExponential(2)}, ` +
          `sweep losses by up to ${maxLossDifference.toExponential(2)} (tolerance ${TOLERANCE})`,
      };

    const out = { version, threads, maxLogitDifference, maxLossDifference, ours: {} };
    const x1 = seededImages(1, 5);
    const peer = {
      forward_images_per_s: [() => run(x128, 128), 128],
      forward1_images_per_s: [() => run(x1, 1), 1],
      sweeps_per_s: [sweep, 1],
    };
    for (const key of Object.keys(ours)) [out.ours[key], out[key]] = await rates([ours[key], peer[key]]);
    return out;
  } catch (e) {
    return { missing: `ONNX Runtime ${version} failed: ${lastLine(e.message)}` };
  } finally {
    if (session) await session.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { onnxPeer };
