// `tempered import`: ONNX graphs onto architecture specs. Models PyTorch exports here
// (python3-torch, torch.onnx.export of scripts/torch_net.py's TemperedNet) must give PyTorch's
// logits and ONNX Runtime's on the same file; graphs built here with the ONNX schema cover
// the other mappings (Dropout, MatMul+Add, Gemm without transB, Reshape, Constant nodes) and
// the refusals; fast-check fuzzes the importer with damaged bytes and mutated graphs.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import { ArchSpec, NAMED_ARCHS, planArch } from '../lib/arch';
import { main } from '../lib/cli/main';
import { TemperedError } from '../lib/errors';
import { Model } from '../lib/model';
import { SUPPORTED_OPS, decodeOnnx, importOnnx } from '../lib/onnx/import';

const ROOT = path.join(__dirname, '..');
const PYTHON = '/usr/bin/python3';
const EXPORT_SCRIPT = path.join(__dirname, 'fixtures', 'onnx_torch_export.py');
const ORT_SCRIPT = path.join(__dirname, 'fixtures', 'onnx_ort_run.js');
const SEED = Number(process.env.TEMPERED_FUZZ_SEED ?? 20261202);
const RUNS = Number(process.env.TEMPERED_FUZZ_RUNS ?? 10_000);
// All three compute in float32 in different orders; a layout mistake moves logits by their own size (order 1 here).
const TOLERANCE = 1e-5;

const probe = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
const hasTorch = probe.status === 0;
if (!hasTorch)
  console.warn(
    `onnx-import: the PyTorch export tests are SKIPPED: ${PYTHON} cannot import torch ` +
      `(${probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop()}). Install python3-torch to run them.`,
  );
const torchTest = hasTorch ? test : test.skip;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tempered-onnx-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// ---- helpers -------------------------------------------------------------------------------

const modelType = protobuf.loadSync(path.join(ROOT, 'lib', 'onnx', 'onnx.proto')).lookupType('onnx.ModelProto');

/** Seeded values in [-scale, scale). */
function seeded(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 - 0.5) * 2 * scale;
  }
  return out;
}

/** Seeded images in [0, 1], NHWC as tempered holds them. */
function images(n: number, spec: ArchSpec, seed: number): Float32Array {
  const { channels, height, width } = spec.input;
  return seeded(n * channels * height * width, seed).map((v) => (v + 1) / 2);
}

/** NHWC -> NCHW, for PyTorch and ONNX Runtime. */
function toNchw(x: Float32Array, spec: ArchSpec): Float32Array {
  const { channels: c, height: h, width: w } = spec.input;
  const out = new Float32Array(x.length);
  const n = x.length / (c * h * w);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) for (let k = 0; k < c; k++) out[((i * c + k) * h + y) * w + xx] = x[((i * h + y) * w + xx) * c + k];
  return out;
}

function softmax(z: Float32Array, classes: number, temperature: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i += classes) {
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, z[i + k] / temperature);
    let sum = 0;
    for (let k = 0; k < classes; k++) sum += Math.exp(z[i + k] / temperature - max);
    for (let k = 0; k < classes; k++) out[i + k] = Math.exp(z[i + k] / temperature - max) / sum;
  }
  return out;
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function readF32(file: string): Float32Array {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

let ortRuns = 0;
/** ONNX Runtime's first output for tempered's images `x` (NHWC), run in its own process. */
function runOrt(model: string | Uint8Array, x: Float32Array, spec: ArchSpec): Float32Array {
  const run = ortRuns++;
  const modelFile = typeof model === 'string' ? model : path.join(dir, `ort-${run}.onnx`);
  if (typeof model !== 'string') fs.writeFileSync(modelFile, model);
  const imagesFile = path.join(dir, `ort-${run}.images.f32`);
  const outputsFile = path.join(dir, `ort-${run}.outputs.f32`);
  const nchw = toNchw(x, spec);
  fs.writeFileSync(imagesFile, Buffer.from(nchw.buffer, nchw.byteOffset, nchw.byteLength));
  const { channels, height, width } = spec.input;
  const n = x.length / (channels * height * width);
  const r = spawnSync(process.execPath, [ORT_SCRIPT, modelFile, imagesFile, ...[n, channels, height, width].map(String), outputsFile], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`onnx_ort_run.js failed: ${r.stderr || r.error?.message}`);
  return readF32(outputsFile);
}

/** The coded error `fn` throws, or a failure naming what happened instead. */
function refusal(fn: () => unknown): TemperedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TemperedError) return err;
    throw new Error(`expected a TemperedError, got ${String((err as Error)?.stack ?? err)}`);
  }
  throw new Error('expected a refusal, but the graph was imported');
}

// ---- graphs built here ---------------------------------------------------------------------

interface TensorInit {
  name: string;
  dims: number[];
  dataType: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int64Data?: number[];
}
interface NodeInit {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute?: Record<string, unknown>[];
  domain?: string;
}
interface GraphInit {
  inputShape: (number | string)[];
  nodes: NodeInit[];
  initializers: TensorInit[];
  output: string;
  opset?: number;
}

const floatTensor = (name: string, dims: number[], values: Float32Array): TensorInit => ({
  name,
  dims,
  dataType: 1,
  rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
});
const int64Tensor = (name: string, values: number[]): TensorInit => ({ name, dims: [values.length], dataType: 7, int64Data: values });
const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
const int = (name: string, v: number) => ({ name, type: 2, i: v });
const float = (name: string, v: number) => ({ name, type: 1, f: v });

function encode(g: GraphInit): Uint8Array {
  const dims = g.inputShape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  const message = modelType.fromObject({
    irVersion: 8,
    producerName: 'tempered-test',
    opsetImport: [{ domain: '', version: g.opset ?? 13 }],
    graph: {
      name: 'chain',
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: 'images', type: { tensorType: { elemType: 1, shape: { dim: dims } } } }],
      output: [{ name: g.output, type: { tensorType: { elemType: 1 } } }],
    },
  });
  return modelType.encode(message).finish();
}

/** A small graph using every mapping the PyTorch exports do not: [n,1,6,6] -> Conv 3x3 pads 1
 * (4 filters) -> Relu -> MaxPool -> Reshape [0,-1] -> Dropout (ratio input) -> Gemm transB=0
 * (8) -> Relu -> MatMul + Add (bias first) (3) -> Div by a Constant temperature -> Softmax. */
function mixedGraph(seed = 1): { graph: GraphInit; arch: ArchSpec; temperature: number } {
  const temperature = 2.5;
  const graph: GraphInit = {
    inputShape: ['n', 1, 6, 6],
    output: 'probs',
    initializers: [
      floatTensor('w1', [4, 1, 3, 3], seeded(36, seed, 0.8)),
      floatTensor('b1', [4], seeded(4, seed + 1, 0.1)),
      int64Tensor('flat_shape', [0, -1]),
      floatTensor('ratio', [], Float32Array.of(0.25)),
      floatTensor('w2', [36, 8], seeded(288, seed + 2, 0.5)),
      floatTensor('b2', [8], seeded(8, seed + 3, 0.1)),
      floatTensor('w3', [8, 3], seeded(24, seed + 4, 0.8)),
      floatTensor('b3', [1, 3], seeded(3, seed + 5, 0.1)),
    ],
    nodes: [
      {
        name: 'conv',
        opType: 'Conv',
        input: ['images', 'w1', 'b1'],
        output: ['c1'],
        attribute: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])],
      },
      { name: 'relu1', opType: 'Relu', input: ['c1'], output: ['r1'] },
      {
        name: 'pool',
        opType: 'MaxPool',
        input: ['r1'],
        output: ['p1'],
        attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])],
      },
      { name: 'reshape', opType: 'Reshape', input: ['p1', 'flat_shape'], output: ['f'] },
      { name: 'drop', opType: 'Dropout', input: ['f', 'ratio'], output: ['d', 'mask'] },
      { name: 'gemm', opType: 'Gemm', input: ['d', 'w2', 'b2'], output: ['g'], attribute: [int('transB', 0), float('alpha', 1)] },
      { name: 'relu2', opType: 'Relu', input: ['g'], output: ['r2'] },
      { name: 'matmul', opType: 'MatMul', input: ['r2', 'w3'], output: ['m'] },
      { name: 'add', opType: 'Add', input: ['b3', 'm'], output: ['logits'] },
      {
        name: 'temperature',
        opType: 'Constant',
        input: [],
        output: ['T'],
        attribute: [{ name: 'value', type: 4, t: floatTensor('', [], Float32Array.of(temperature)) }],
      },
      { name: 'div', opType: 'Div', input: ['logits', 'T'], output: ['scaled'] },
      { name: 'softmax', opType: 'Softmax', input: ['scaled'], output: ['probs'], attribute: [int('axis', 1)] },
    ],
  };
  const arch: ArchSpec = {
    input: { channels: 1, height: 6, width: 6 },
    layers: [
      { type: 'conv', filters: 4, kernel: 3, padding: 'same' },
      { type: 'relu' },
      { type: 'maxpool' },
      { type: 'flatten' },
      { type: 'dropout', rate: 0.25 },
      { type: 'dense', units: 8 },
      { type: 'relu' },
      { type: 'dense', units: 3 },
    ],
  };
  return { graph, arch, temperature };
}

/** The mixed graph with its nodes changed by `edit`. */
function edited(edit: (g: GraphInit) => void): Uint8Array {
  const { graph } = mixedGraph();
  edit(graph);
  return encode(graph);
}

function nodeNamed(g: GraphInit, name: string): NodeInit {
  const node = g.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name}`);
  return node;
}

// ---- PyTorch exports -----------------------------------------------------------------------

const SAME_PADDING_SPEC: ArchSpec = {
  input: { channels: 3, height: 16, width: 16 },
  layers: [
    { type: 'conv', filters: 8, kernel: 3, padding: 'same' },
    { type: 'relu' },
    { type: 'conv', filters: 8, kernel: 3, padding: 'same' },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'conv', filters: 16, kernel: 3 },
    { type: 'relu' },
    { type: 'maxpool' },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.5 },
    { type: 'dense', units: 32 },
    { type: 'relu' },
    { type: 'dense', units: 5 },
  ],
};

/** Exports TemperedNet(spec) from PyTorch; returns the file and PyTorch's outputs for `x`. */
function torchExport(label: string, spec: ArchSpec, x: Float32Array, opts: { seed: number; opset: number; temperature?: number }) {
  const specFile = path.join(dir, `${label}.json`);
  const imagesFile = path.join(dir, `${label}.images.f32`);
  const outputsFile = path.join(dir, `${label}.outputs.f32`);
  const onnxFile = path.join(dir, `${label}.onnx`);
  fs.writeFileSync(specFile, JSON.stringify(spec));
  fs.writeFileSync(imagesFile, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  const args = [EXPORT_SCRIPT, specFile, onnxFile, imagesFile, outputsFile, String(opts.seed), String(opts.opset)];
  if (opts.temperature !== undefined) args.push(String(opts.temperature));
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`onnx_torch_export.py failed: ${r.stderr || r.error?.message}`);
  return { onnxFile, outputs: readF32(outputsFile) };
}

/** Spec without dropout layers: PyTorch leaves them out of an inference graph. */
function withoutDropout(spec: ArchSpec): ArchSpec {
  return { input: spec.input, layers: spec.layers.filter((l) => l.type !== 'dropout') };
}

const EXPORTS: { label: string; spec: ArchSpec; opset: number; temperature?: number }[] = [
  { label: 'paper-mnist', spec: NAMED_ARCHS['paper-mnist'], opset: 13 },
  { label: 'cw-cifar', spec: NAMED_ARCHS['cw-cifar'], opset: 11 },
  { label: 'same-padding, softmax at T=0.5', spec: SAME_PADDING_SPEC, opset: 17, temperature: 0.5 },
];

describe('models PyTorch exports', () => {
  for (const [i, { label, spec, opset, temperature }] of EXPORTS.entries()) {
    torchTest(`${label} (opset ${opset}): the spec, PyTorch's outputs and ONNX Runtime's`, async () => {
      const x = images(16, spec, 100 + i);
      const exported = torchExport(`torch-${i}`, spec, x, { seed: 7 + i, opset, temperature });
      const model = await importOnnx(exported.onnxFile, { backend: 'cpu' });
      try {
        expect(JSON.parse(JSON.stringify(model.arch))).toEqual(JSON.parse(JSON.stringify(withoutDropout(spec))));
        expect(model.metadata.importedSoftmaxTemperature).toBe(temperature);
        const logits = await model.predict(x);
        const ours = temperature === undefined ? logits : softmax(logits, model.classes, temperature);
        const viaOrt = runOrt(exported.onnxFile, x, spec);
        const vsTorch = maxDifference(ours, exported.outputs);
        const vsOrt = maxDifference(ours, viaOrt);
        console.warn(
          `onnx-import ${label}: max |difference| vs PyTorch ${vsTorch.toExponential(2)}, vs ONNX Runtime ${vsOrt.toExponential(2)} ` +
            `(outputs up to ${maxAbs(exported.outputs).toFixed(3)}${temperature === undefined ? ', logits' : ', probabilities'})`,
        );
        // The tolerance means something only where the outputs are of order 1 and not all alike.
        expect(maxAbs(exported.outputs)).toBeGreaterThan(temperature === undefined ? 0.5 : 0.3);
        expect(vsTorch).toBeLessThanOrEqual(TOLERANCE);
        expect(vsOrt).toBeLessThanOrEqual(TOLERANCE);
      } finally {
        model.dispose();
      }
    });
  }

  /** Exports `nn.Sequential(<layers>)` for [n, 1, 28, 28] images (seeded weights, eval mode)
   * and writes its outputs for `x` (NHWC). */
  function exportSequential(file: string, layers: string, x: Float32Array): Float32Array {
    const code = [
      'import sys, torch',
      'from torch import nn',
      'torch.manual_seed(5)',
      `net = nn.Sequential(${layers})`,
      'for m in net.modules():',
      '    if isinstance(m, nn.BatchNorm2d):',
      '        m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 2); m.weight.data.uniform_(0.5, 2); m.bias.data.uniform_(-0.5, 0.5)',
      'net.eval()',
      'raw = bytearray(open(sys.argv[2], "rb").read())',
      'x = torch.frombuffer(raw, dtype=torch.float32).reshape(-1, 28, 28, 1).permute(0, 3, 1, 2).contiguous()',
      'torch.onnx.export(net, x[:1], sys.argv[1], opset_version=13)',
      'with torch.no_grad(): open(sys.argv[3], "wb").write(net(x).numpy().tobytes())',
    ].join('\n');
    const imagesFile = `${file}.images.f32`;
    const outputsFile = `${file}.outputs.f32`;
    fs.writeFileSync(imagesFile, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const r = spawnSync(PYTHON, ['-c', code, file, imagesFile, outputsFile], { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`the export failed: ${r.stderr || r.error?.message}`);
    return readF32(outputsFile);
  }

  torchTest("a PyTorch Conv + BatchNorm2d in eval mode (folded into the Conv by the export) gives PyTorch's logits", async () => {
    const file = path.join(dir, 'torch-bn.onnx');
    const x = images(1, NAMED_ARCHS['paper-mnist'], 1);
    const outputs = exportSequential(file, 'nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)', x);
    const model = await importOnnx(file, { backend: 'cpu' });
    try {
      expect(model.arch.layers.map((l) => l.type)).toEqual(['conv', 'relu', 'flatten', 'dense']);
      expect(maxDifference(await model.predict(x), outputs)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      model.dispose();
    }
  });

  torchTest('a PyTorch export with a Sigmoid is refused naming the node and its op type', () => {
    const file = path.join(dir, 'torch-sigmoid.onnx');
    exportSequential(
      file,
      'nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)',
      images(1, NAMED_ARCHS['paper-mnist'], 2),
    );
    const e = refusal(() => decodeOnnx(fs.readFileSync(file), 'torch-sigmoid.onnx'));
    expect({ code: e.code, message: e.message }).toEqual({
      code: 'TEMPERED_UNSUPPORTED_MODEL',
      message: expect.stringMatching(/^torch-sigmoid\.onnx: node '[^']*Sigmoid[^']*' \(Sigmoid\): op type Sigmoid is not supported/),
    });
  });

  torchTest('tempered import writes a model file that loads with the same spec, outputs and metadata', async () => {
    const { spec, opset, temperature } = EXPORTS[2]; // the one with a softmax head
    const x = images(4, spec, 300);
    const exported = torchExport('torch-cli', spec, x, { seed: 9, opset, temperature });
    const out = path.join(dir, 'imported.safetensors');
    const write = process.stdout.write;
    let stdout = '';
    process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
    let status: number;
    try {
      status = await main(['node', 'tempered', 'import', exported.onnxFile, '--out', out, '--json']);
    } finally {
      process.stdout.write = write;
    }
    expect(status).toBe(0);
    expect(JSON.parse(stdout).arch).toEqual(JSON.parse(JSON.stringify(withoutDropout(spec))));
    const model = await Model.load(out, { backend: 'cpu' });
    try {
      expect(model.metadata.importedSoftmaxTemperature).toBe(temperature);
      expect(model.metadata.imported).toMatchObject({ format: 'onnx', opset, softmax: true });
      expect(maxDifference(softmax(await model.predict(x), model.classes, temperature!), exported.outputs)).toBeLessThanOrEqual(TOLERANCE);
    } finally {
      model.dispose();
    }
  });
});

// ---- graphs built here ---------------------------------------------------------------------

describe('graphs built with the ONNX schema', () => {
  test("Dropout, Reshape, Gemm transB=0, MatMul+Add, a Constant temperature: the spec, ONNX Runtime's outputs", async () => {
    const { graph, arch, temperature } = mixedGraph();
    const bytes = encode(graph);
    const imported = decodeOnnx(bytes, 'mixed.onnx');
    expect(imported.arch).toEqual(arch);
    expect(imported.metadata.importedSoftmaxTemperature).toBe(temperature);
    const model = Model.fromParameters(imported.parameters, { arch: imported.arch, backend: 'cpu' });
    try {
      const x = images(8, arch, 5);
      const ours = softmax(await model.predict(x), 3, temperature);
      const viaOrt = runOrt(bytes, x, arch);
      expect(maxDifference(ours, viaOrt)).toBeLessThanOrEqual(1e-6);
      // Not a constant function: the images give different classes.
      expect(new Set(await model.classify(x)).size).toBeGreaterThan(1);
    } finally {
      model.dispose();
    }
  });

  test('Gemm with alpha and beta, Mul by 1/T, Flatten, Dropout ratio as an attribute (opset 11)', async () => {
    const bytes = edited((g) => {
      g.opset = 11;
      const gemm = nodeNamed(g, 'gemm');
      gemm.attribute = [int('transB', 0), float('alpha', 0.5), float('beta', 2)];
      const drop = nodeNamed(g, 'drop');
      drop.input = ['f'];
      drop.attribute = [float('ratio', 0.4)];
      Object.assign(nodeNamed(g, 'reshape'), { opType: 'Flatten', input: ['p1'], attribute: [int('axis', 1)] });
      Object.assign(nodeNamed(g, 'div'), { opType: 'Mul', input: ['T', 'logits'] });
      nodeNamed(g, 'temperature').attribute![0].t = floatTensor('', [], Float32Array.of(0.25));
    });
    const imported = decodeOnnx(bytes);
    expect(imported.arch.layers[4]).toEqual({ type: 'dropout', rate: Math.fround(0.4) });
    expect(imported.metadata.importedSoftmaxTemperature).toBe(4);
    const model = Model.fromParameters(imported.parameters, { arch: imported.arch, backend: 'cpu' });
    try {
      const x = images(8, imported.arch, 6);
      expect(maxDifference(softmax(await model.predict(x), 3, 4), runOrt(bytes, x, imported.arch))).toBeLessThanOrEqual(1e-6);
    } finally {
      model.dispose();
    }
  });

  test('a Constant value_float temperature (opset 13)', async () => {
    const bytes = edited((g) => (nodeNamed(g, 'temperature').attribute = [float('value_float', 8)]));
    const imported = decodeOnnx(bytes);
    expect(imported.metadata.importedSoftmaxTemperature).toBe(8);
    const model = Model.fromParameters(imported.parameters, { arch: imported.arch, backend: 'cpu' });
    try {
      const x = images(4, imported.arch, 7);
      expect(maxDifference(softmax(await model.predict(x), 3, 8), runOrt(bytes, x, imported.arch))).toBeLessThanOrEqual(1e-6);
    } finally {
      model.dispose();
    }
  });

  test('an unsupported op is refused naming the node and its op type', () => {
    const sigmoid = refusal(() =>
      decodeOnnx(
        edited((g) => (nodeNamed(g, 'relu2').opType = 'Sigmoid')),
        'sig.onnx',
      ),
    );
    expect(sigmoid.code).toBe('TEMPERED_UNSUPPORTED_MODEL');
    expect(sigmoid.message).toMatch(/^sig\.onnx: node 'relu2' \(Sigmoid\): op type Sigmoid is not supported/);
    const batchNorm = refusal(() =>
      decodeOnnx(
        edited((g) => {
          g.initializers.push(...['scale', 'bias', 'mean', 'var'].map((n, i) => floatTensor(`bn_${n}`, [4], seeded(4, i).map(Math.abs))));
          g.nodes.splice(1, 0, {
            name: 'bn',
            opType: 'BatchNormalization',
            input: ['c1', 'bn_scale', 'bn_bias', 'bn_mean', 'bn_var'],
            output: ['n1'],
          });
          nodeNamed(g, 'relu1').input = ['n1'];
        }),
      ),
    );
    expect(batchNorm.message).toMatch(/node 'bn' \(BatchNormalization\): op type BatchNormalization is not supported/);
  });

  const REFUSALS: [string, (g: GraphInit) => void, RegExp][] = [
    ['a 5x5 kernel', (g) => (g.initializers[0] = floatTensor('w1', [4, 1, 5, 5], seeded(100, 1))), /node 'conv' \(Conv\).*5x5 kernel/],
    ['stride 2', (g) => nodeNamed(g, 'conv').attribute!.push(ints('strides', [2, 2])), /node 'conv' \(Conv\): strides \[2, 2\]/],
    ['groups', (g) => nodeNamed(g, 'conv').attribute!.push(int('group', 2)), /grouped/],
    ['asymmetric pads', (g) => (nodeNamed(g, 'conv').attribute![1] = ints('pads', [1, 1, 0, 0])), /pads \[1, 1, 0, 0\]/],
    ['3x3 max pooling', (g) => (nodeNamed(g, 'pool').attribute![0] = ints('kernel_shape', [3, 3])), /node 'pool' \(MaxPool\): only 2x2/],
    ['an unknown attribute', (g) => (nodeNamed(g, 'relu1').attribute = [int('alpha', 1)]), /node 'relu1' \(Relu\): attribute 'alpha'/],
    [
      'a branch',
      (g) => g.nodes.push({ name: 'side', opType: 'Relu', input: ['r1'], output: ['side_out'] }),
      /tensor 'r1' is read by 2 nodes \(node 'pool' \(MaxPool\), node 'side' \(Relu\)\)/,
    ],
    ['a cycle', (g) => (nodeNamed(g, 'relu1').input = ['c1', 'r2']), /node 'relu1' \(Relu\): input 'r2' is neither the chain's tensor/],
    ['an unknown input', (g) => (nodeNamed(g, 'gemm').input[1] = 'nowhere'), /node 'gemm' \(Gemm\): input 'nowhere' is neither/],
    [
      'a stray node',
      (g) => g.nodes.push({ name: 'lonely', opType: 'Relu', input: ['w3'], output: ['x'] }),
      /node 'lonely' \(Relu\): the node is not on the chain/,
    ],
    [
      'a weight of the wrong shape',
      (g) => (g.initializers[4] = floatTensor('w2', [35, 8], seeded(280, 1))),
      /node 'gemm' \(Gemm\): the weight \[35, 8\] takes 35 inputs, the chain gives 36/,
    ],
    [
      'raw data shorter than the dims',
      (g) => (g.initializers[0] = { ...floatTensor('w1', [4, 1, 3, 3], seeded(35, 1)) }),
      /node 'conv' \(Conv\).*holds 140 bytes of data, not the 144/,
    ],
    [
      'huge dims',
      (g) => (g.initializers[4] = { name: 'w2', dims: [36, 2 ** 40], dataType: 1 }),
      /node 'gemm' \(Gemm\).*dimensions \[36, 1099511627776\]/,
    ],
    [
      'a non-finite weight',
      (g) => (g.initializers[1] = floatTensor('b1', [4], Float32Array.of(0, NaN, 0, 0))),
      /non-finite value at element 1/,
    ],
    [
      'alpha scaling a weight beyond float32',
      (g) => {
        g.initializers[4] = floatTensor('w2', [36, 8], new Float32Array(288).fill(1e10));
        nodeNamed(g, 'gemm').attribute = [int('transB', 0), float('alpha', 1e30)];
      },
      /node 'gemm' \(Gemm\): alpha .* beyond float32/,
    ],
    ['an external tensor', (g) => Object.assign(g.initializers[0], { dataLocation: 1 }), /external file/],
    [
      'a Div that is not a temperature',
      (g) => g.nodes.splice(g.nodes.length - 1, 1, { name: 'end', opType: 'Identity', input: ['scaled'], output: ['probs'] }),
      /node 'div' \(Div\): a division .* only just before the final Softmax/,
    ],
    [
      'training mode',
      (g) => {
        g.initializers.push({ name: 'on', dims: [], dataType: 9, rawData: Uint8Array.of(1) });
        nodeNamed(g, 'drop').input.push('on');
      },
      /training_mode/,
    ],
    ['a used dropout mask', (g) => (nodeNamed(g, 'relu2').input = ['mask']), /second output 'mask' is used|read by no node/],
    ['a non-default domain', (g) => (nodeNamed(g, 'relu1').domain = 'com.microsoft'), /domain 'com\.microsoft'/],
    ['an input of 5 dimensions', (g) => g.inputShape.push(1), /graph input 'images' has 5 dimensions/],
    ['a symbolic height', (g) => (g.inputShape[2] = 'h'), /no fixed channels, height and width/],
    [
      'an input too large for the engine',
      (g) => {
        g.inputShape[2] = 100;
        g.inputShape[3] = 100;
        g.initializers[4] = floatTensor('w2', [10000, 8], new Float32Array(80000));
      },
      /maps onto a network tempered cannot run/,
    ],
    ['opset 6', (g) => (g.opset = 6), /opset 6 is not supported/],
    [
      'a reshape that is not a flatten',
      (g) => (g.initializers[2] = int64Tensor('flat_shape', [0, 4, 9])),
      /node 'reshape' \(Reshape\): a reshape to 3 dimensions/,
    ],
  ];
  for (const [what, edit, message] of REFUSALS)
    test(`refused: ${what}`, () => {
      const e = refusal(() => decodeOnnx(edited(edit), 'g.onnx'));
      expect({ code: e.code, message: e.message }).toEqual({ code: 'TEMPERED_UNSUPPORTED_MODEL', message: expect.stringMatching(message) });
    });

  test('weights whose logits overflow float32 are refused, as Model.load refuses them', async () => {
    const file = path.join(dir, 'overflow.onnx');
    fs.writeFileSync(
      file,
      edited((g) => (g.initializers[6] = floatTensor('w3', [8, 3], new Float32Array(24).fill(3e38)))),
    );
    const e = await importOnnx(file, { backend: 'cpu' }).then(
      () => undefined,
      (err: TemperedError) => err,
    );
    expect({ code: e?.code, message: e?.message }).toEqual({
      code: 'TEMPERED_BAD_FILE',
      message: expect.stringMatching(/non-finite logits/),
    });
  });

  test('memory stays bounded: a small file of millions of empty nodes is refused before it is decoded', () => {
    const nodes = 2_200_000; // 4.4 MB of file; decoded, about 2 GB of NodeProto objects
    const varint = (v: number) => {
      const out: number[] = [];
      for (; v >= 0x80; v >>>= 7) out.push((v & 0x7f) | 0x80);
      return [...out, v];
    };
    const graph = Buffer.alloc(2 * nodes);
    for (let i = 0; i < nodes; i++) graph[2 * i] = 0x0a; // GraphProto.node (field 1), length 0
    const bytes = Buffer.concat([Buffer.from([0x3a, ...varint(graph.length)]), graph]); // ModelProto.graph (field 7)
    const before = process.memoryUsage().heapUsed;
    const e = refusal(() => decodeOnnx(bytes, 'nodes.onnx'));
    expect({ code: e.code, message: e.message }).toEqual({
      code: 'TEMPERED_BAD_FILE',
      message: expect.stringMatching(/more than 1024 MiB of memory/),
    });
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(256 * 1024 * 1024);
    // A field with a wire type its schema type never has (the graph as a varint) is damage, not a model.
    expect(refusal(() => decodeOnnx(Buffer.from([0x38, 0x05]))).message).toMatch(/wire type 0/);
  });

  test('bytes that are not ONNX, and files that cannot be ONNX, are TEMPERED_BAD_FILE or TEMPERED_IO; the CLI exits 2', async () => {
    const bytes = encode(mixedGraph().graph);
    expect(refusal(() => decodeOnnx(bytes.subarray(0, bytes.length - 7))).code).toBe('TEMPERED_BAD_FILE');
    expect(refusal(() => decodeOnnx(Buffer.from('not a model at all'))).code).toMatch(/TEMPERED_(BAD_FILE|UNSUPPORTED_MODEL)/);
    expect(refusal(() => decodeOnnx(new Uint8Array(0))).message).toMatch(/no graph/);
    const bad = path.join(dir, 'bad.onnx');
    fs.writeFileSync(bad, bytes.subarray(0, 100));
    const write = process.stderr.write;
    let stderr = '';
    process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write;
    try {
      expect(await main(['node', 'tempered', 'import', bad, '--out', path.join(dir, 'never.safetensors')])).toBe(2);
      fs.writeFileSync(
        bad,
        edited((g) => (nodeNamed(g, 'relu1').opType = 'Sigmoid')),
      );
      expect(await main(['node', 'tempered', 'import', bad, '--out', path.join(dir, 'never.safetensors')])).toBe(2);
      expect(await main(['node', 'tempered', 'import', path.join(dir, 'absent.onnx'), '--out', path.join(dir, 'never.safetensors')])).toBe(
        2,
      );
    } finally {
      process.stderr.write = write;
    }
    expect(stderr).toMatch(/TEMPERED_BAD_FILE/);
    expect(stderr).toMatch(/\[TEMPERED_UNSUPPORTED_MODEL\]: .*bad\.onnx: node 'relu1' \(Sigmoid\)/);
    expect(stderr).toMatch(/TEMPERED_IO/);
    expect(fs.existsSync(path.join(dir, 'never.safetensors'))).toBe(false);
  });
});

// ---- fuzz ----------------------------------------------------------------------------------

/** A case passes with a coded refusal, or an import whose spec the engine accepts and whose
 * parameters fill its layout with finite values. */
function importedOrRefused(bytes: Uint8Array): boolean {
  let imported;
  try {
    imported = decodeOnnx(bytes, 'fuzz.onnx');
  } catch (err) {
    if (err instanceof TemperedError && (err.code === 'TEMPERED_BAD_FILE' || err.code === 'TEMPERED_UNSUPPORTED_MODEL')) return false;
    throw new Error(`expected a coded refusal, got ${String((err as Error)?.stack ?? err)}`);
  }
  const plan = planArch(imported.arch);
  expect(imported.parameters.length).toBe(plan.parameters.reduce((s, p) => s + p.size, 0));
  if (!imported.parameters.every(Number.isFinite)) throw new Error('non-finite parameters imported');
  return true;
}

type Mutation =
  | { kind: 'opType'; node: number; op: string }
  | { kind: 'input'; node: number; slot: number; name: string }
  | { kind: 'output'; node: number; name: string }
  | { kind: 'drop'; node: number }
  | { kind: 'duplicate'; node: number }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'attribute'; node: number; attribute: Record<string, unknown> }
  | { kind: 'dims'; tensor: number; dims: number[] }
  | { kind: 'dataType'; tensor: number; dataType: number }
  | { kind: 'truncateData'; tensor: number; keep: number }
  | { kind: 'inputShape'; index: number; value: number | string }
  | { kind: 'opset'; version: number };

// The supported ops, one the importer refuses, and an empty op type.
const OPS = [...SUPPORTED_OPS, 'Sigmoid', ''];
const NAMES = [
  'images',
  'c1',
  'r1',
  'p1',
  'f',
  'd',
  'mask',
  'g',
  'r2',
  'm',
  'logits',
  'T',
  'scaled',
  'probs',
  'w1',
  'b1',
  'w2',
  'w3',
  'b3',
  'ratio',
  'flat_shape',
  '',
  'x',
];
const size = fc.oneof(fc.integer({ min: -2, max: 40 }), fc.constantFrom(2 ** 31, 2 ** 53 + 2, -(2 ** 40)));
const attribute = fc.oneof(
  fc.record({
    name: fc.constantFrom('kernel_shape', 'strides', 'pads', 'dilations'),
    type: fc.constantFrom(7, 2),
    ints: fc.array(size, { maxLength: 5 }),
  }),
  fc.record({ name: fc.constantFrom('group', 'axis', 'transB', 'transA', 'ceil_mode', 'allowzero'), type: fc.constantFrom(2, 1), i: size }),
  fc.record({ name: fc.constantFrom('alpha', 'beta', 'ratio'), type: fc.constantFrom(1, 2), f: fc.double() }),
  fc.record({ name: fc.constantFrom('auto_pad', 'value'), type: fc.constantFrom(3, 4), s: fc.uint8Array({ maxLength: 12 }) }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('opType' as const), node: fc.nat(20), op: fc.constantFrom(...OPS) }),
  fc.record({ kind: fc.constant('input' as const), node: fc.nat(20), slot: fc.nat(3), name: fc.constantFrom(...NAMES) }),
  fc.record({ kind: fc.constant('output' as const), node: fc.nat(20), name: fc.constantFrom(...NAMES) }),
  fc.record({ kind: fc.constant('drop' as const), node: fc.nat(20) }),
  fc.record({ kind: fc.constant('duplicate' as const), node: fc.nat(20) }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(20), b: fc.nat(20) }),
  fc.record({ kind: fc.constant('attribute' as const), node: fc.nat(20), attribute }),
  fc.record({ kind: fc.constant('dims' as const), tensor: fc.nat(10), dims: fc.array(size, { maxLength: 5 }) }),
  fc.record({ kind: fc.constant('dataType' as const), tensor: fc.nat(10), dataType: fc.integer({ min: 0, max: 17 }) }),
  fc.record({ kind: fc.constant('truncateData' as const), tensor: fc.nat(10), keep: fc.nat(400) }),
  fc.record({ kind: fc.constant('inputShape' as const), index: fc.nat(4), value: fc.oneof(size, fc.constant('n')) }),
  fc.record({ kind: fc.constant('opset' as const), version: fc.integer({ min: 0, max: 30 }) }),
);

function mutate(g: GraphInit, m: Mutation): void {
  const node = (i: number) => g.nodes[i % Math.max(1, g.nodes.length)];
  const tensor = (i: number) => g.initializers[i % g.initializers.length];
  switch (m.kind) {
    case 'opType':
      if (node(m.node)) node(m.node).opType = m.op;
      break;
    case 'input':
      if (node(m.node)) node(m.node).input[m.slot] = m.name;
      break;
    case 'output':
      if (node(m.node)) node(m.node).output[0] = m.name;
      break;
    case 'drop':
      g.nodes.splice(m.node % Math.max(1, g.nodes.length), 1);
      break;
    case 'duplicate':
      if (node(m.node)) g.nodes.push(JSON.parse(JSON.stringify(node(m.node))));
      break;
    case 'swap': {
      const a = m.a % g.nodes.length;
      const b = m.b % g.nodes.length;
      [g.nodes[a], g.nodes[b]] = [g.nodes[b], g.nodes[a]];
      break;
    }
    case 'attribute':
      if (node(m.node)) node(m.node).attribute = [...(node(m.node).attribute ?? []), m.attribute];
      break;
    case 'dims':
      tensor(m.tensor).dims = m.dims;
      break;
    case 'dataType':
      tensor(m.tensor).dataType = m.dataType;
      break;
    case 'truncateData': {
      const t = tensor(m.tensor);
      if (t.rawData) t.rawData = t.rawData.subarray(0, m.keep % (t.rawData.length + 1));
      break;
    }
    case 'inputShape':
      g.inputShape[m.index] = m.value;
      break;
    case 'opset':
      g.opset = m.version;
      break;
  }
}

type Damage =
  | { kind: 'truncate'; at: number }
  | { kind: 'overwrite'; edits: { at: number; byte: number }[] }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'random'; bytes: Uint8Array };
const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('overwrite' as const),
    edits: fc.array(fc.record({ at: fc.nat(), byte: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 256 }) }),
);

function applyDamage(buf: Uint8Array, d: Damage): Uint8Array {
  switch (d.kind) {
    case 'truncate':
      return buf.subarray(0, buf.length === 0 ? 0 : d.at % buf.length);
    case 'overwrite': {
      const out = Uint8Array.from(buf);
      for (const e of d.edits) out[e.at % out.length] = e.byte;
      return out;
    }
    case 'insert': {
      const at = d.at % (buf.length + 1);
      return Buffer.concat([buf.subarray(0, at), d.bytes, buf.subarray(at)]);
    }
    case 'random':
      return d.bytes;
  }
}

describe('fuzz: the ONNX importer', () => {
  test(`${RUNS} mutated graphs and damaged bytes: a coded refusal or an import the engine accepts`, () => {
    expect(importedOrRefused(encode(mixedGraph().graph))).toBe(true);
    let imports = 0;
    fc.assert(
      fc.property(fc.nat(), fc.array(mutation, { maxLength: 3 }), fc.option(damage, { freq: 2 }), (seed, mutations, d) => {
        const { graph } = mixedGraph(seed);
        for (const m of mutations) mutate(graph, m);
        let bytes: Uint8Array;
        try {
          bytes = encode(graph);
        } catch {
          return; // protobufjs would not write this message (a value of the wrong type): no file to read
        }
        if (d) bytes = applyDamage(bytes, d);
        if (importedOrRefused(bytes)) imports++;
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The mutations leave some graphs valid: the property above checked imports too, not only refusals.
    expect(imports).toBeGreaterThan(RUNS / 100);
  });

  torchTest(`${RUNS / 10} damaged copies of a PyTorch export: a coded refusal or an import the engine accepts`, () => {
    const spec = SAME_PADDING_SPEC;
    const { onnxFile } = torchExport('torch-fuzz', spec, images(1, spec, 1), { seed: 3, opset: 13 });
    const valid = fs.readFileSync(onnxFile);
    expect(importedOrRefused(valid)).toBe(true);
    fc.assert(
      fc.property(damage, (d) => void importedOrRefused(applyDamage(valid, d))),
      { seed: SEED, numRuns: RUNS / 10 },
    );
  });
});
