// The CPU backend's Winograd F(2x2,3x3) convolutions (native/cpu/winograd_f2x2_3x3.*), which
// training and inference use for the 3x3 convolutions with at least 32 input and output channels: every
// such layer's forward output and input gradient against the float64 reference applied to the
// engine's own input (as layers.test.ts does for the direct kernel), on the paper's network and
// on cw-cifar. A trace with convolution 'fast' computes what a training step, a prediction, an
// attack and a sweep compute; 'direct' (the trace's default) is the direct kernel, the reference.
//
// Bound per layer: |native - ref| <= 1e-5 max|ref| + 1e-4 |ref|, the direct kernel's per-layer
// allowance in layers.test.ts. Winograd's worst error/allowance ratio is printed with
// REF_REPORT=1 and listed per layer in docs/performance.md.
import { namedArch, planArch, ArchName } from '../lib/arch';
import type { NativeArchSpec } from '../binding';
import { native } from '../lib/native';
import { Random } from '../lib/rng';
import { compare, Comparison, formatComparison, scaled } from './reference/compare';
import { conv3x3BackwardData, conv3x3Forward, maxPool2x2Backward, Numbers, relu, reluBackward } from './reference/layers';

const ATOL = 1e-5;
const RTOL = 1e-4;
const MIN_CHANNELS = 32; // the table in winograd_f2x2_3x3.h
const forcedDirect = process.env.TEMPERED_CONV === 'direct';

type Trace = Record<string, Float32Array>;

interface Run {
  fast: Trace;
  direct: Trace;
  params: Float32Array;
}

async function traces(name: ArchName, n: number, seed: number): Promise<Run> {
  const arch = namedArch(name);
  const model = native.createModel('cpu', seed, arch);
  try {
    const [h, w, c] = planArch(arch).inputShape;
    const rng = new Random(seed);
    const images = new Float32Array(n * h * w * c);
    for (let i = 0; i < images.length; i++) images[i] = rng.next();
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = rng.int(10);
    const cfg = { temperature: 1, lossScale: 1, dropoutRate: 0, dropoutSeed: 1 };
    const fast = await model.trace(images, labels, null, { ...cfg, convolution: 'fast' }, 3);
    const direct = await model.trace(images, labels, null, { ...cfg, convolution: 'direct' }, 3);
    return { fast: { ...fast, input: images }, direct: { ...direct, input: images }, params: model.getParameters() };
  } finally {
    model.dispose();
  }
}

interface ConvLayer {
  name: string;
  index: number; // the step's index
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  input: string; // the trace tensor it reads
  weight: Float32Array;
  bias: Float32Array;
}

function convLayers(name: ArchName, params: Float32Array): ConvLayer[] {
  const plan = planArch(namedArch(name));
  const tensor = (p: string): Float32Array => {
    const info = plan.parameters.find((x) => x.name === p)!;
    return params.subarray(info.offset, info.offset + info.size);
  };
  const out: ConvLayer[] = [];
  plan.steps.forEach((s, i) => {
    if (s.kind !== 'conv') return;
    const [inH, inW, inC] = i === 0 ? plan.inputShape : plan.steps[i - 1].outputShape;
    out.push({
      name: s.name,
      index: i,
      inH,
      inW,
      inC,
      outC: s.outputShape[2],
      input: i === 0 ? 'input' : plan.steps[i - 1].name,
      weight: tensor(`${s.name}.weight`),
      bias: tensor(`${s.name}.bias`),
    });
  });
  return out;
}

const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const winogradLayer = (l: ConvLayer): boolean => l.inC >= MIN_CHANNELS && l.outC >= MIN_CHANNELS;

/** Forward outputs and the input gradients of every Winograd layer, against the float64 reference. */
function comparisons(name: ArchName, tr: Trace, params: Float32Array, n: number): Comparison[] {
  const plan = planArch(namedArch(name));
  const out: Comparison[] = [];
  const check = (what: string, ref: Numbers): void => {
    out.push(compare(what, tr[what.split(' ')[0]], ref, scaled(ref, ATOL, RTOL)));
  };
  for (const l of convLayers(name, params)) {
    if (!winogradLayer(l)) continue;
    check(`${l.name} forward`, relu(conv3x3Forward(tr[l.input], n, l.inH, l.inW, l.inC, l.weight, l.bias, l.outC)));
    // The gradient at the layer's input, carried down to the conv below it (through a pool).
    let g: Numbers = conv3x3BackwardData(tr[`d_${l.name}`], n, l.inH, l.inW, l.inC, l.weight, l.outC);
    for (let j = l.index - 1; j >= 0; j--) {
      const s = plan.steps[j];
      if (s.kind === 'maxpool') {
        const [h, w, c] = j === 0 ? plan.inputShape : plan.steps[j - 1].outputShape;
        g = maxPool2x2Backward(g, tr[plan.steps[j - 1].name], n, h, w, c);
      } else if (s.kind === 'conv') {
        check(`d_${s.name} (from ${l.name}'s backward data)`, reluBackward(g, tr[s.name]));
        break;
      } else {
        throw new Error(`unexpected step ${s.kind} below ${l.name}`);
      }
    }
  }
  return out;
}

const worst = new Map<string, string>();
afterAll(() => {
  if (process.env.REF_REPORT) {
    // eslint-disable-next-line no-console
    console.log(`Winograd (then direct): max |err| / max |ref| and worst err/allowance per layer:\n${[...worst.values()].join('\n')}`);
  }
});

describe.each([
  ['paper-mnist', 4, 5],
  ['cw-cifar', 2, 6],
] as [ArchName, number, number][])('Winograd F(2x2,3x3) on %s', (name, n, seed) => {
  let run: Run;
  beforeAll(async () => {
    run = await traces(name, n, seed);
  }, 120_000);

  test('every Winograd layer (forward, backward data) within the float64 bound', () => {
    const cs = comparisons(name, run.fast, run.params, n);
    // paper-mnist: conv2-conv4 forward and d_conv1-d_conv3; cw-cifar the same.
    expect(cs.length).toBe(6);
    for (const c of cs) {
      worst.set(
        `${name} ${c.name}`,
        `${`${name} ${c.name}`.padEnd(56)} ${(c.maxError / c.scale).toExponential(2)}  ${(c.worst?.ratio ?? 0).toFixed(3)}`,
      );
    }
    const failed = cs.filter((c) => !c.ok);
    if (failed.length) throw new Error(failed.map((c) => formatComparison(c)).join('\n'));
  });

  test("the direct kernel's trace meets the same bound (the reference the Winograd one replaces)", () => {
    const cs = comparisons(name, run.direct, run.params, n);
    for (const c of cs) {
      const key = `${name} ${c.name}`;
      worst.set(key, `${worst.get(key) ?? key}  direct: ${(c.maxError / c.scale).toExponential(2)}  ${(c.worst?.ratio ?? 0).toFixed(3)}`);
    }
    const failed = cs.filter((c) => !c.ok);
    if (failed.length) throw new Error(failed.map((c) => formatComparison(c)).join('\n'));
  });

  (forcedDirect ? test.skip : test)(
    "the 'fast' trace really ran Winograd: its layers differ from the direct kernel's, the others are equal",
    () => {
      const layers = convLayers(name, run.params);
      // The first convolution (1 or 3 input channels) stays direct: bit for bit the same.
      expect(winogradLayer(layers[0])).toBe(false);
      expect(Buffer.from(run.fast[layers[0].name].buffer).equals(Buffer.from(run.direct[layers[0].name].buffer))).toBe(true);
      for (const l of layers.filter(winogradLayer)) {
        const a = run.fast[l.name];
        const b = run.direct[l.name];
        let differ = 0;
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
        expect(differ).toBeGreaterThan(0);
      }
    },
  );
  (forcedDirect ? test.skip : test)(
    "inference runs the same Winograd: predict's logits equal the 'fast' trace's bit for bit, not the direct one's",
    async () => {
      const model = native.createModel('cpu', seed, namedArch(name));
      try {
        const logits = await model.predict(run.fast.input);
        const last = planArch(namedArch(name)).steps.at(-1)!.name;
        expect(sameBits(logits, run.fast[last])).toBe(true);
        expect(sameBits(logits, run.direct[last])).toBe(false);
      } finally {
        model.dispose();
      }
    },
  );

  test('a changed weight or bias is never served the transformed kernel of the old one', async () => {
    const arch = namedArch(name);
    const plan = planArch(arch);
    const model = native.createModel('cpu', seed, arch);
    try {
      const x = run.fast.input;
      const last = plan.steps.at(-1)!.name;
      const layer = convLayers(name, run.params).filter(winogradLayer).at(-1)!;
      const before = await model.predict(x); // fills the cache with the seed's kernels
      for (const tensor of [`${layer.name}.weight`, `${layer.name}.bias`]) {
        // The tensor's end (the last output channel's weights, or its bias): a cache that
        // compared only a prefix would miss it.
        const info = plan.parameters.find((q) => q.name === tensor)!;
        const changed = tensor.endsWith('.weight') ? layer.inC * 9 : 1;
        const params = model.getParameters();
        for (let i = info.size - changed; i < info.size; i++) params[info.offset + i] += 0.5;
        model.setParameters(params);
        const after = await model.predict(x);
        expect(sameBits(after, before)).toBe(false);
        // Against the direct kernel on the new weights (the trace never reads the cache).
        const labels = new Int32Array(n);
        const cfg = { temperature: 1, lossScale: 1, dropoutRate: 0, dropoutSeed: 1, convolution: 'direct' as const };
        const direct = (await model.trace(x, labels, null, cfg, 0))[last];
        const cs = compare(`${tensor} changed`, after, direct, scaled(direct, ATOL, RTOL));
        if (!cs.ok) throw new Error(formatComparison(cs));
      }
    } finally {
      model.dispose();
    }
  });
});

test("a trace's convolution option is checked", async () => {
  const model = native.createModel('cpu', 1);
  try {
    const images = new Float32Array(784);
    const labels = new Int32Array(1);
    await expect(model.trace(images, labels, null, { convolution: 'winograd' as 'fast' }, 0)).rejects.toMatchObject({
      code: 'TEMPERED_OUT_OF_RANGE',
      message: /config\.convolution must be 'fast' or 'direct'/,
    });
  } finally {
    model.dispose();
  }
});

// At inference (predictions, evaluations, attack losses) a Winograd convolution that a max-pool
// follows writes the pooled output straight from its output transform (Backend::conv3x3_pools),
// and a direct convolution before a Winograd one is computed band by band into it
// (conv3x3_pairs): the same values as the operations one by one, since each element is the
// same sequence of operations and the maximum is taken in the pool's order.
describe('the convolutions fused at inference', () => {
  const c = (filters: number) => ({ type: 'conv' as const, filters, kernel: 3 as const });
  const r = { type: 'relu' as const };
  const pool = { type: 'maxpool' as const };
  const tail = [{ type: 'flatten' as const }, { type: 'dense' as const, units: 10 }];
  const input = (channels: number, height: number, width: number) => ({ channels, height, width });
  // fused: each fused operation and shape as the profile names them, sorted.
  const cases: { what: string; fused: string[]; arch: NativeArchSpec }[] = [
    {
      what: 'a direct convolution, a Winograd one with ReLU and a pool',
      fused: ['conv3x3_pair_forward 14x14x1 -> 12x12x32 -> 10x10x32 -> pool'],
      arch: { input: input(1, 14, 14), layers: [c(32), r, c(32), r, pool, ...tail] },
    },
    {
      what: 'the same without ReLU, 3 input and 48 channels',
      fused: ['conv3x3_pair_forward 12x16x3 -> 10x14x32 -> 8x12x48 -> pool'],
      arch: { input: input(3, 12, 16), layers: [c(32), c(48), pool, ...tail] },
    },
    {
      what: 'a pair without a pool, then a Winograd convolution and a pool',
      fused: ['conv3x3_forward 12x12x32 -> 10x10x64 -> pool', 'conv3x3_pair_forward 16x16x1 -> 14x14x32 -> 12x12x32'],
      arch: { input: input(1, 16, 16), layers: [c(32), r, c(32), r, c(64), r, pool, ...tail] },
    },
    {
      what: 'a pair of odd output sizes (the last tiles stick out), no pool',
      fused: ['conv3x3_pair_forward 15x13x1 -> 13x11x32 -> 11x9x32'],
      arch: { input: input(1, 15, 13), layers: [c(32), r, c(32), r, ...tail] },
    },
    {
      what: "a 'same' convolution (a pad step before it) and a pool",
      fused: ['conv3x3_forward 10x10x32 -> 8x8x64 -> pool'],
      arch: { input: input(1, 10, 10), layers: [c(32), r, { ...c(64), padding: 'same' }, r, pool, ...tail] },
    },
    {
      what: 'a second convolution of 16 channels (the direct kernel; nothing fused)',
      fused: [],
      arch: { input: input(1, 14, 14), layers: [c(32), r, c(16), r, pool, ...tail] },
    },
  ];
  for (const { what, fused, arch } of cases) {
    (forcedDirect ? test.skip : test)(`${what}: predict and evaluate equal the unfused 'fast' trace bit for bit`, async () => {
      const plan = planArch(arch);
      const model = native.createModel('cpu', 5, arch);
      try {
        const [h, w, ch] = plan.inputShape;
        const n = 7;
        const rng = new Random(11);
        const images = new Float32Array(n * h * w * ch);
        // Some exact ties and zeros in the pool windows: half the pixels 0.
        for (let i = 0; i < images.length; i++) images[i] = rng.next() < 0.5 ? 0 : rng.next();
        const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
        const cfg = { temperature: 1, lossScale: 1, dropoutRate: 0, dropoutSeed: 1, convolution: 'fast' as const };
        const last = plan.steps.at(-1)!.name;
        const traced = (await model.trace(images, labels, null, cfg, 0))[last];
        expect(sameBits(await model.predict(images), traced)).toBe(true);
        const ds = await native.createDataset('cpu', images, labels, null, h * w * ch, 10);
        try {
          const e = await model.evaluate(ds, 0, n, 1, true);
          expect(sameBits(e.logits!, traced)).toBe(true);
        } finally {
          ds.dispose();
        }
        // The fusions really ran (or really did not): the profile names the fused operations.
        const ops = await native.profileForward('cpu', n, 1, arch);
        const names = ops.map((o) => `${o.op} ${o.shape}`);
        expect(names.filter((x) => x.includes('pair') || x.endsWith('-> pool')).sort()).toEqual(fused);
        expect(names.some((x) => x.startsWith('maxpool2x2_forward'))).toBe(fused.length === 0);
      } finally {
        model.dispose();
      }
    });
  }
});
