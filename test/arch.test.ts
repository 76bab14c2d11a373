// The architecture as data: the engine's checks of a spec (coded errors naming the layer,
// fuzzed), the named specs' layouts, and any network against the float64 reference built
// from its spec (logits, input gradients) and its sweep against full forward passes, bit for
// bit, on every named spec and on 20 random small specs (seeded).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { ArchSpec, LayerSpec, NAMED_ARCHS, canonicalArch, namedArch, planArch, resolveArch } from '../lib/arch';
import { Model } from '../lib/model';
import { Random } from '../lib/rng';
import { caught } from './helpers';
import { referenceGradients, referenceInputGradient, referenceLogits } from './reference/arch-network';

function badArch(spec: unknown, message: RegExp): void {
  const e = caught(() => planArch(spec as ArchSpec));
  expect(e.code).toBe('TEMPERED_BAD_ARCH');
  expect(e.message).toMatch(message);
}

const base = (layers: LayerSpec[], input = { channels: 1, height: 28, width: 28 }): ArchSpec => ({ input, layers });

describe('architecture specs', () => {
  test('the named specs lay out the PyTorch tensors', () => {
    const paper = planArch(namedArch('paper-mnist'));
    expect(paper.totalParameters).toBe(312202);
    expect(paper.parameters.map((p) => p.name)).toEqual(
      ['conv1', 'conv2', 'conv3', 'conv4', 'fc1', 'fc2', 'fc3'].flatMap((n) => [`${n}.weight`, `${n}.bias`]),
    );
    expect(paper.parameters.find((p) => p.name === 'fc1.weight')!.shape).toEqual([200, 1024]);
    const cifar = planArch(namedArch('cw-cifar'));
    expect(cifar.inputShape).toEqual([32, 32, 3]);
    expect(cifar.classes).toBe(10);
    // 64-64-pool-128-128-pool on 32x32: 5x5x128 = 3,200 features into fc1.
    expect(cifar.parameters.find((p) => p.name === 'fc1.weight')!.shape).toEqual([256, 3200]);
    expect(cifar.totalParameters).toBe(1792 + 36928 + 73856 + 147584 + 819456 + 65792 + 2570);
    expect(planArch(namedArch('cw-mnist')).totalParameters).toBe(312202);
  });

  test('bad specs are refused with TEMPERED_BAD_ARCH naming the layer', () => {
    const conv = { type: 'conv', filters: 4 } as const;
    const tail: LayerSpec[] = [{ type: 'flatten' }, { type: 'dense', units: 10 }];
    badArch(null, /must be an object/);
    badArch({ input: { channels: 2, height: 28, width: 28 }, layers: tail }, /input: channels/);
    badArch({ input: { channels: 1, height: 0, width: 28 }, layers: tail }, /input: height/);
    badArch({ input: { channels: 1, height: 65, width: 28 }, layers: tail }, /input: height/);
    badArch(base([]), /layers must hold/);
    badArch(base([{ type: 'softmax' } as unknown as LayerSpec, ...tail]), /layer 0: unknown layer type 'softmax'/);
    badArch(base([{ type: 'flatten' }, conv, { type: 'dense', units: 10 }]), /layer 1 \(conv\): a convolution cannot follow flatten/);
    badArch(
      base([conv, { type: 'maxpool' }, { type: 'maxpool' }, { type: 'maxpool' }, ...tail]),
      /layer 2 \(maxpool\): .*even height and width \(its input is 13x13x4\)/,
    );
    badArch(base([conv, { type: 'flatten' }]), /layer 1 \(flatten\): the last layer must be dense/);
    badArch(base([{ type: 'flatten' }, { type: 'dense', units: 1 }]), /classes, which must be 2\.\.100 \(got 1\)/);
    badArch(base([{ type: 'flatten' }, { type: 'dense', units: 101 }]), /got 101/);
    badArch(base([{ type: 'dense', units: 10 }]), /layer 0 \(dense\): a dense layer needs a flatten/);
    badArch(base([{ type: 'conv', filters: 4, kernel: 7 }, ...tail]), /layer 0 \(conv\): kernel must be 3 or 5 \(got 7\)/);
    badArch(base([{ type: 'conv', filters: 0 }, ...tail]), /layer 0 \(conv\): filters must be/);
    badArch(base([{ type: 'conv', filters: 4, padding: 'full' as 'same' }, ...tail]), /padding must be 'valid' or 'same'/);
    badArch(base([{ type: 'dropout', rate: 1 }, ...tail]), /layer 0 \(dropout\): rate must be/);
    badArch(base([{ type: 'flatten' }, { type: 'flatten' }, { type: 'dense', units: 10 }]), /flattens twice/);
    badArch(base([{ type: 'flatten' }, { type: 'dense', units: 10 }, { type: 'relu' }]), /without ReLU/);
    // 64 x 64 x 3 flattened into 60,000 units: more than 1e8 parameters.
    badArch(
      base([{ type: 'flatten' }, { type: 'dense', units: 60000 }, { type: 'dense', units: 10 }], { channels: 3, height: 64, width: 64 }),
      /layer 1 \(dense\): the network has more than 1e8 parameters/,
    );
    // 4 convolutions of 3x3 on 7x7 leave nothing.
    badArch(
      base([conv, conv, conv, conv, ...tail], { channels: 1, height: 7, width: 7 }),
      /layer 3 \(conv\): a 3x3 convolution does not fit/,
    );
  });

  test('a spec is read once, whatever its getters do, and a getter that throws is a clean error', () => {
    let reads = 0;
    const layers = [{ type: 'flatten' }, { type: 'dense', units: 10 }];
    const spec = {
      input: { channels: 1, height: 28, width: 28 },
      get layers() {
        reads++;
        return layers;
      },
    };
    expect(planArch(spec as ArchSpec).classes).toBe(10);
    expect(reads).toBe(1);
    const hostile = {
      input: { channels: 1, height: 28, width: 28 },
      get layers(): never {
        throw new Error('boom');
      },
    };
    expect(caught(() => planArch(hostile as unknown as ArchSpec)).message).toMatch(/boom/);
  });

  test('fuzz: 10,000 arbitrary specs give a plan or TEMPERED_BAD_ARCH, never a crash', () => {
    const layer = fc.oneof(
      fc.record({
        type: fc.constant('conv'),
        filters: fc.integer({ min: -2, max: 70 }),
        kernel: fc.constantFrom(3, 5, 0, 3.5),
        padding: fc.constantFrom('valid', 'same', 'x'),
      }),
      fc.record({ type: fc.constantFrom('relu', 'maxpool', 'flatten', 'bogus') }),
      fc.record({ type: fc.constant('dropout'), rate: fc.double({ min: -1, max: 2 }) }),
      fc.record({ type: fc.constant('dense'), units: fc.integer({ min: -1, max: 120 }) }),
      fc.anything(),
    );
    const spec = fc.record({
      input: fc.oneof(
        fc.record({
          channels: fc.integer({ min: 0, max: 4 }),
          height: fc.integer({ min: -1, max: 70 }),
          width: fc.integer({ min: -1, max: 70 }),
        }),
        fc.anything(),
      ),
      layers: fc.oneof(fc.array(layer, { maxLength: 12 }), fc.anything()),
    });
    fc.assert(
      fc.property(spec, (s) => {
        try {
          const plan = planArch(s as unknown as ArchSpec);
          expect(plan.classes).toBeGreaterThanOrEqual(2);
        } catch (err) {
          expect((err as { code?: string }).code).toBe('TEMPERED_BAD_ARCH');
        }
      }),
      { numRuns: 10000, seed: 15 },
    );
  });

  test('resolveArch: names, spec files, and clear refusals', () => {
    expect(canonicalArch(resolveArch('cw-cifar'))).toBe(canonicalArch(NAMED_ARCHS['cw-cifar']));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-arch-'));
    const file = path.join(dir, 'net.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        base([{ type: 'conv', filters: 8, padding: 'same' }, { type: 'relu' }, { type: 'flatten' }, { type: 'dense', units: 10 }]),
      ),
    );
    expect(planArch(resolveArch(file)).steps.map((s) => s.kind)).toEqual(['pad', 'conv', 'flatten', 'dense']);
    fs.writeFileSync(file, '{"input": ');
    expect(caught(() => resolveArch(file)).code).toBe('TEMPERED_BAD_ARCH');
    fs.writeFileSync(file, JSON.stringify(base([{ type: 'dense', units: 10 }])));
    expect(caught(() => resolveArch(file)).message).toMatch(/net\.json: .*layer 0 \(dense\)/);
    expect(caught(() => resolveArch('resnet50')).message).toMatch(/unknown architecture 'resnet50'.*paper-mnist/);
    expect(caught(() => resolveArch(dir + '.json')).code).toBe('TEMPERED_BAD_ARCH');
    fs.rmSync(dir, { recursive: true });
  });
});

/** A random valid small spec (seeded): 1 or 3 channels, a few convolutions (valid or same),
 * pools where the size is even, ReLUs (fused or not), dropout, dense layers, 2-12 classes. */
function randomSpec(rng: Random): ArchSpec {
  const channels = rng.next() < 0.5 ? 1 : 3;
  const side = 6 + Math.floor(rng.next() * 7);
  const width = side + (rng.next() < 0.3 ? 2 : 0);
  let h = side;
  let w = width;
  const layers: LayerSpec[] = [];
  const convs = Math.floor(rng.next() * 4);
  for (let i = 0; i < convs; i++) {
    const same = rng.next() < 0.4;
    const kernel = rng.next() < 0.3 ? 5 : 3;
    if (!same && (h < kernel || w < kernel)) break;
    layers.push({
      type: 'conv',
      filters: 1 + Math.floor(rng.next() * 6),
      ...(kernel === 5 ? { kernel } : {}),
      ...(same ? { padding: 'same' as const } : {}),
    });
    if (!same) {
      h -= kernel - 1;
      w -= kernel - 1;
    }
    if (rng.next() < 0.7) layers.push({ type: 'relu' });
    if (h % 2 === 0 && w % 2 === 0 && h >= 2 && rng.next() < 0.5) {
      layers.push({ type: 'maxpool' });
      h /= 2;
      w /= 2;
      if (rng.next() < 0.3) layers.push({ type: 'relu' });
    }
    if (rng.next() < 0.2) layers.push({ type: 'dropout', rate: 0.25 });
  }
  layers.push({ type: 'flatten' });
  if (rng.next() < 0.3) layers.push({ type: 'relu' }); // after a flatten: a ReLU of its own
  const hidden = Math.floor(rng.next() * 3);
  for (let i = 0; i < hidden; i++) {
    layers.push({ type: 'dense', units: 3 + Math.floor(rng.next() * 12) });
    if (rng.next() < 0.8) layers.push({ type: 'relu' });
    if (rng.next() < 0.3) layers.push({ type: 'dropout', rate: 0.5 });
  }
  layers.push({ type: 'dense', units: 2 + Math.floor(rng.next() * 11) });
  return { input: { channels, height: side, width }, layers };
}

function imagesFor(spec: ArchSpec, n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const size = spec.input.channels * spec.input.height * spec.input.width;
  const x = new Float32Array(n * size);
  for (let i = 0; i < x.length; i++) {
    const u = rng.next();
    x[i] = u < 0.3 ? 0 : u > 0.85 ? 1 : Math.fround(rng.next()); // pixels at 0 and 1 exercise the sweep's skips
  }
  return x;
}

const SPECS: Array<[string, ArchSpec]> = [
  ...(Object.keys(NAMED_ARCHS) as Array<keyof typeof NAMED_ARCHS>).map((n): [string, ArchSpec] => [n, namedArch(n)]),
  ...Array.from({ length: 20 }, (_, k): [string, ArchSpec] => [`random spec ${k}`, randomSpec(new Random(1000 + k))]),
];

describe("the spec-built float64 reference against finite differences (the references' own check)", () => {
  // Central differences of the batch-mean cross-entropy, all in float64, at 6 input values and
  // 6 parameters per spec: the backward pass of test/reference/arch-network.ts is right, so
  // the engine's agreement with it (below) means the engine's gradients are right.
  test.each(SPECS)(
    '%s',
    (_name, spec) => {
      const plan = planArch(spec);
      const rng = new Random(77);
      const n = 2;
      const params = new Map<string, Float64Array>();
      for (const p of plan.parameters)
        params.set(
          p.name,
          Float64Array.from({ length: p.size }, () => (rng.next() - 0.5) * 0.4),
        );
      const images = Float64Array.from(imagesFor(spec, n, 9));
      const labels = Int32Array.from({ length: n }, (_, i) => i % plan.classes);
      const loss = (x: Float64Array) => {
        const z = referenceLogits(spec, params, x, n);
        let total = 0;
        for (let i = 0; i < n; i++) {
          const row = z.subarray(i * plan.classes, (i + 1) * plan.classes);
          const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
          total += m + Math.log(row.reduce((a, b) => a + Math.exp(b - m), 0)) - row[labels[i]];
        }
        return total / n;
      };
      const g = referenceGradients(spec, params, images, labels, n, 1);
      const h = 1e-6;
      const check = (analytic: number, plus: () => number, minus: () => number) => {
        const numeric = (plus() - minus()) / (2 * h);
        expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(numeric));
      };
      for (let k = 0; k < 6; k++) {
        const i = Math.floor(rng.next() * images.length);
        const at = (d: number) => {
          const x = images.slice();
          x[i] += d;
          return loss(x);
        };
        check(
          g.dinput[i],
          () => at(h),
          () => at(-h),
        );
      }
      for (let k = 0; k < 6; k++) {
        const p = plan.parameters[Math.floor(rng.next() * plan.parameters.length)];
        const t = params.get(p.name)!;
        const j = Math.floor(rng.next() * t.length);
        const at = (d: number) => {
          const saved = t[j];
          t[j] = saved + d;
          const v = loss(images);
          t[j] = saved;
          return v;
        };
        check(
          g.params.get(p.name)![j],
          () => at(h),
          () => at(-h),
        );
      }
    },
    60000,
  );
});

describe('any network against its float64 reference and its sweep against full forward passes', () => {
  test('the random specs cover 5x5 kernels, same padding, 3 channels and standalone ReLUs', () => {
    const layers = SPECS.flatMap(([, s]) => s.layers);
    expect(layers.some((l) => l.type === 'conv' && l.kernel === 5)).toBe(true);
    expect(layers.some((l) => l.type === 'conv' && l.padding === 'same')).toBe(true);
    expect(SPECS.some(([, s]) => s.input.channels === 3)).toBe(true);
    expect(SPECS.some(([, s]) => planArch(s).steps.some((st) => st.kind === 'relu'))).toBe(true);
  });

  test.each(SPECS)(
    '%s',
    async (_name, spec) => {
      const plan = planArch(spec);
      const model = Model.create({ seed: 3, arch: spec, backend: 'cpu' });
      const params = new Map<string, Float32Array>();
      const flat = model.getParameters();
      for (const p of plan.parameters) params.set(p.name, flat.subarray(p.offset, p.offset + p.size));
      const n = 2;
      const images = imagesFor(spec, n, 7);
      const labels = Int32Array.from({ length: n }, (_, i) => i % plan.classes);

      // Logits and the input gradient of the float64 cross-entropy at T = 3.
      const z = await model.predict(images);
      const zr = referenceLogits(spec, params, images, n);
      const zScale = Math.max(1e-6, ...Array.from(zr, Math.abs));
      for (let i = 0; i < zr.length; i++) expect(Math.abs(z[i] - zr[i])).toBeLessThanOrEqual(1e-4 * zScale);
      const g = await model.nativeModel.inputGradient(images, labels, { loss: 'xent', precision: 'float64', temperature: 3 });
      const gr = referenceInputGradient(spec, params, images, labels, n, 3);
      const gScale = Math.max(1e-12, ...Array.from(gr, Math.abs));
      let worst = 0;
      for (let i = 0; i < gr.length; i++) worst = Math.max(worst, Math.abs(g.gradient[i] - gr[i]) / gScale);
      expect(worst).toBeLessThan(1e-3);

      // Every parameter's gradient (the trace's, dropout off) against the reference's, tensor by tensor.
      const tr = await model.nativeModel.trace(images, labels, null, { temperature: 3, lossScale: 1, dropoutRate: 0 }, 0);
      const ref = referenceGradients(spec, params, images, labels, n, 3);
      for (const p of plan.parameters) {
        const want = ref.params.get(p.name)!;
        const got = tr.grad.subarray(p.offset, p.offset + p.size);
        const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-12);
        let bad = 0;
        for (let i = 0; i < want.length; i++) bad = Math.max(bad, Math.abs(got[i] - want[i]) / scale);
        expect([p.name, bad < 1e-3]).toEqual([p.name, true]);
      }

      // The sweep of every position against the full forward passes of the perturbed images.
      const positions = spec.input.height * spec.input.width;
      const channels = spec.input.channels;
      const size = positions * channels;
      const skip = new Uint8Array(n * positions);
      // The big named specs: a sample of positions, to stay quick.
      const stride = positions > 400 ? 37 : 1;
      for (let i = 0; i < skip.length; i++) skip[i] = i % stride === 0 ? 0 : 1;
      for (const lossSpec of [
        { loss: 'xent', precision: 'float32' },
        { loss: 'margin', precision: 'float64' },
      ] as const) {
        const sw = await model.nativeModel.sweep(images, labels, lossSpec, skip);
        const perturbed: number[] = [];
        const where: number[] = [];
        const plabels: number[] = [];
        for (let i = 0; i < n; i++)
          for (let cand = 0; cand < 2 * positions; cand++) {
            const p = cand % positions;
            if (skip[i * positions + p]) {
              expect(Number.isNaN(sw.losses[i * 2 * positions + cand])).toBe(true);
              continue;
            }
            const img = Array.from(images.subarray(i * size, (i + 1) * size));
            for (let ch = 0; ch < channels; ch++) img[p * channels + ch] = cand < positions ? 1 : 0;
            perturbed.push(...img);
            where.push(i * 2 * positions + cand);
            plabels.push(labels[i]);
          }
        const full = await model.nativeModel.attackLosses(Float32Array.from(perturbed), Int32Array.from(plabels), lossSpec);
        let differ = 0;
        where.forEach((at, j) => (differ += Object.is(sw.losses[at], full.loss[j]) ? 0 : 1));
        expect(differ).toBe(0);
        const baseFull = await model.nativeModel.attackLosses(images, labels, lossSpec);
        expect(Array.from(sw.base)).toEqual(Array.from(baseFull.loss));
      }
      model.dispose();
    },
    60000,
  );
});
