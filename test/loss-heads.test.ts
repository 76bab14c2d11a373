// The attack losses (float32 / float64 cross-entropy, logit margin) against float64
// references computed from the same logits, the numerical cliffs docs/algorithms.md describes,
// and the input gradients against the float64 reference network.
import { native } from '../lib/native';
import { makeImages, makeLabels, makeParameters } from './reference/fixtures';
import { backward, dropoutMasks, forward, splitParameters } from './reference/network';

const NO_DROPOUT = { temperature: 1, lossScale: 1, dropoutRate: 0, dropoutSeed: 0, step: 0 };
const fr = Math.fround;

/** A model whose logits are scaled by `k` (fc3 weights and bias times k). */
function scaledModel(seed: number, k: number) {
  const p = makeParameters(seed);
  const m = native.createModel('cpu', seed);
  const layout = native.parameterLayout();
  const flat = Float32Array.from(p);
  for (const t of layout) if (t.name.startsWith('fc3.')) for (let i = 0; i < t.size; i++) flat[t.offset + i] *= k;
  m.setParameters(flat);
  return { model: m, parameters: flat };
}

function margins(z: Float32Array, labels: Int32Array): number[] {
  return Array.from(labels, (y, i) => {
    let best = -Infinity;
    for (let j = 0; j < 10; j++) if (j !== y) best = Math.max(best, z[i * 10 + j]);
    return z[i * 10 + y] - best;
  });
}

// float64 reference of log(1 + sum_{j != y} exp((z_j - z_y) / T)): the log-sum-exp form when
// the loss is large enough for it to be accurate, a series for tiny sums.
function xent64Reference(z: ArrayLike<number>, o: number, y: number, t: number): number {
  const d: number[] = [];
  for (let j = 0; j < 10; j++) if (j !== y) d.push((z[o + j] - z[o + y]) / t);
  const s = d.reduce((acc, v) => acc + Math.exp(v), 0);
  if (s > 1e-3) {
    const m = Math.max(0, ...d);
    return m + Math.log(Math.exp(-m) + d.reduce((acc, v) => acc + Math.exp(v - m), 0));
  }
  return s - (s * s) / 2 + (s * s * s) / 3;
}

// float32 emulation of the usual loss: lse(z / T) - z_y / T, every operation rounded.
function xent32Emulated(z: ArrayLike<number>, o: number, y: number, t: number): number {
  let m = -Infinity;
  for (let j = 0; j < 10; j++) m = Math.max(m, fr(z[o + j] / t));
  let s = 0;
  for (let j = 0; j < 10; j++) s = fr(s + fr(Math.exp(fr(fr(z[o + j] / t) - m))));
  return fr(fr(m + fr(Math.log(s))) - fr(z[o + y] / t));
}

const n = 24;
// Noise images: no exact ties in the pools, so float32 and float64 networks route gradients alike.
const images = makeImages(n, 3, [0]);
const labels = makeLabels(n, 4);

test('margin, float32 and float64 cross-entropy match references from the same logits', async () => {
  for (const k of [1, 30, 300]) {
    const { model } = scaledModel(11, k);
    for (const t of [1, 20]) {
      const m32 = await model.attackLosses(images, labels, { loss: 'margin', precision: 'float32' });
      const m64 = await model.attackLosses(images, labels, { loss: 'margin', precision: 'float64' });
      const x32 = await model.attackLosses(images, labels, { loss: 'xent', precision: 'float32', temperature: t });
      const x64 = await model.attackLosses(images, labels, { loss: 'xent', precision: 'float64', temperature: t });
      const z = x64.logits;
      const mg = margins(z, labels);
      for (let i = 0; i < n; i++) {
        expect(m64.loss[i]).toBe(-mg[i]);
        expect(m32.loss[i]).toBe(fr(-mg[i]));
        const ref = xent64Reference(z, i * 10, labels[i], t);
        expect(Math.abs(x64.loss[i] - ref)).toBeLessThanOrEqual(1e-12 * Math.abs(ref) + 1e-300);
        const emu = xent32Emulated(z, i * 10, labels[i], t);
        expect(Math.abs(x32.loss[i] - emu)).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(emu)));
      }
    }
  }
});

test('the cliffs: float32 cross-entropy is exactly 0 past a margin of ~17, float64 is not until ~700', async () => {
  const { model } = scaledModel(11, 300);
  const x32 = await model.attackLosses(images, labels, { loss: 'xent', precision: 'float32' });
  const x64 = await model.attackLosses(images, labels, { loss: 'xent', precision: 'float64' });
  const mg = margins(x64.logits, labels);
  let saturated = 0;
  for (let i = 0; i < n; i++) {
    if (mg[i] > 17) {
      expect(x32.loss[i]).toBe(0);
      saturated++;
      if (mg[i] < 700) expect(x64.loss[i]).toBeGreaterThan(0);
      // log1p(sum e^-d) ~ e^-margin for the nearest class
      if (mg[i] < 700) expect(Math.log(x64.loss[i])).toBeGreaterThan(-mg[i] - Math.log(10) - 1e-6);
    }
  }
  expect(saturated).toBeGreaterThan(3); // the fixture does produce saturated samples
});

test('input gradients: float64 matches the float64 reference network even where float32 underflows', async () => {
  for (const k of [1, 5000]) {
    const { model, parameters } = scaledModel(12, k);
    // Label each image with the model's own prediction: correctly classified samples, whose
    // margins grow with k (at k = 5000 far past the float32 underflow of the softmax).
    const logits = await model.predict(images);
    const labels = Int32Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[i * 10 + j] > logits[i * 10 + best]) best = j;
      return best;
    });
    const g64 = await model.inputGradient(images, labels, { loss: 'xent', precision: 'float64' });
    const g32 = await model.inputGradient(images, labels, { loss: 'xent', precision: 'float32' });
    const p = splitParameters(parameters);
    const masks = dropoutMasks(n, NO_DROPOUT);
    const a = forward(p, images, n, masks);
    // dL/dz of log1p(sum exp(z_j - z_y)) in float64, from the engine's float32 logits: with
    // margins of hundreds, e^-margin amplifies any difference in the logits, and this test
    // is about the backward pass (the heads are tested above).
    const zl = g64.logits;
    const dz = new Float64Array(n * 10);
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      let m = 0;
      for (let j = 0; j < 10; j++) if (j !== y) m = Math.max(m, zl[i * 10 + j] - zl[i * 10 + y]);
      let sum = 0;
      for (let j = 0; j < 10; j++) if (j !== y) sum += Math.exp(zl[i * 10 + j] - zl[i * 10 + y] - m);
      const total = Math.exp(-m) + sum;
      for (let j = 0; j < 10; j++) dz[i * 10 + j] = j === y ? -sum / total : Math.exp(zl[i * 10 + j] - zl[i * 10 + y] - m) / total;
    }
    const ref = backward(p, images, n, masks, a, labels, null, NO_DROPOUT, dz).dinput;
    let zero32 = 0;
    for (let i = 0; i < n; i++) {
      let scale = 0;
      for (let q = 0; q < 784; q++) scale = Math.max(scale, Math.abs(ref[i * 784 + q]));
      expect(scale).toBeGreaterThan(0);
      for (let q = 0; q < 784; q++) {
        const err = Math.abs(g64.gradient[i * 784 + q] - ref[i * 784 + q]);
        if (err > 1e-3 * scale)
          throw new Error(`k=${k} sample ${i} pixel ${q}: native ${g64.gradient[i * 784 + q]} ref ${ref[i * 784 + q]} (scale ${scale})`);
      }
      let all0 = true;
      for (let q = 0; q < 784; q++) all0 = all0 && g32.gradient[i * 784 + q] === 0;
      if (all0) zero32++;
      if (k === 1) {
        // Unsaturated: the float32 gradient agrees with the float64 one.
        for (let q = 0; q < 784; q++) expect(Math.abs(g32.gradient[i * 784 + q] - ref[i * 784 + q])).toBeLessThanOrEqual(1e-3 * scale);
      }
    }
    if (k === 5000)
      expect(zero32).toBeGreaterThan(0); // gradient masking in float32, not in float64
    else expect(zero32).toBe(0);
  }
});
