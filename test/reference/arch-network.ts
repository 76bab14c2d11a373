// Any network of an architecture spec in float64, built from the reference layers (layers.ts)
// by walking the spec's layers: the independent reference of the engine's run-time network,
// and the only one (test/reference/network.ts binds it to the paper's spec).
//
// The steps are derived here from the spec, as docs/model-format.md describes them, not read
// from the engine's plan: a ReLU right after a conv or dense layer belongs to that layer (its
// trace tensor is the activation after the ReLU), a 'same' conv is a zero pad then a 'valid'
// conv, and the last dense layer's output is named 'logits'. Trace names: convK, poolK, reluL
// (L = the spec's layer index, for a ReLU of its own), flat, fcK, logits; the backward adds
// d_<name> for every conv and every dense layer but the last (w.r.t. its pre-activation) and
// d_flat (w.r.t. flat, after the dropout that follows it).
//
// Dropout: layer D (counted from 0 in spec order) at step S masks element i of its input with
// dropoutMask(seed, D, S, ...), at the configuration's rate when that is >= 0, else the spec's.
import type { ArchSpec } from '../../lib/arch';
import {
  applyMask,
  conv3x3BackwardData,
  conv3x3BackwardWeights,
  denseBackwardWeights,
  conv3x3Forward,
  denseBackwardData,
  denseForward,
  dropoutMask,
  flattenNhwcToChw,
  maxPool2x2Backward,
  maxPool2x2Forward,
  relu,
  reluBackward,
  softmaxCrossEntropy,
  unflattenChwToNhwc,
  type Numbers,
} from './layers';

export interface Shape {
  h: number;
  w: number;
  c: number;
}

/** Pre-activation output [n][h-k+1][w-k+1][cout] of a 'valid' k x k convolution of x [n][h][w][cin]
 * (weight [cout][cin][k][k]); conv3x3Forward for k = 3 is the layer tests' reference. */
export function convForward(
  x: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  weight: Numbers,
  bias: Numbers,
  cout: number,
  k: number,
): Float64Array {
  if (k === 3) return conv3x3Forward(x, n, h, w, cin, weight, bias, cout);
  const ho = h - k + 1;
  const wo = w - k + 1;
  const y = new Float64Array(n * ho * wo * cout);
  for (let s = 0; s < n; s++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let o = 0; o < cout; o++) {
          let sum = bias[o];
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++)
              for (let i = 0; i < cin; i++)
                sum += weight[((o * cin + i) * k + ky) * k + kx] * x[((s * h + oy + ky) * w + ox + kx) * cin + i];
          y[((s * ho + oy) * wo + ox) * cout + o] = sum;
        }
  return y;
}

/** Gradient w.r.t. x [n][h][w][cin] of a 'valid' k x k convolution, given dy [n][h-k+1][w-k+1][cout]. */
export function convBackwardData(
  dy: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  weight: Numbers,
  cout: number,
  k: number,
): Float64Array {
  if (k === 3) return conv3x3BackwardData(dy, n, h, w, cin, weight, cout);
  const ho = h - k + 1;
  const wo = w - k + 1;
  const dx = new Float64Array(n * h * w * cin);
  for (let s = 0; s < n; s++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let o = 0; o < cout; o++) {
          const d = dy[((s * ho + oy) * wo + ox) * cout + o];
          if (d === 0) continue;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++)
              for (let i = 0; i < cin; i++)
                dx[((s * h + oy + ky) * w + ox + kx) * cin + i] += d * weight[((o * cin + i) * k + ky) * k + kx];
        }
  return dx;
}

/** A zero border of p around x [n][h][w][c]. */
export function padNhwc(x: Numbers, n: number, h: number, w: number, c: number, p: number): Float64Array {
  const H = h + 2 * p;
  const W = w + 2 * p;
  const y = new Float64Array(n * H * W * c);
  for (let s = 0; s < n; s++)
    for (let r = 0; r < h; r++)
      for (let q = 0; q < w; q++)
        for (let ch = 0; ch < c; ch++) y[((s * H + r + p) * W + q + p) * c + ch] = x[((s * h + r) * w + q) * c + ch];
  return y;
}

export function cropNhwc(x: Numbers, n: number, h: number, w: number, c: number, p: number): Float64Array {
  const H = h - 2 * p;
  const W = w - 2 * p;
  const y = new Float64Array(n * H * W * c);
  for (let s = 0; s < n; s++)
    for (let r = 0; r < H; r++)
      for (let q = 0; q < W; q++)
        for (let ch = 0; ch < c; ch++) y[((s * H + r) * W + q) * c + ch] = x[((s * h + r + p) * w + q + p) * c + ch];
  return y;
}

// ---------------------------------------------------------------------------------------------
// Steps and parameters, from the spec

export type StepKind = 'pad' | 'conv' | 'relu' | 'maxpool' | 'dropout' | 'flatten' | 'dense';

export interface ReferenceStep {
  kind: StepKind;
  /** The trace name (pads and dropouts are not traced). */
  name: string;
  in: Shape;
  out: Shape;
  /** conv / dense: a ReLU follows it and belongs to it. */
  relu: boolean;
  /** conv: kernel side; pad: border width. */
  k: number;
  pad: number;
  /** dropout: the spec's rate and its index among the dropout layers. */
  rate: number;
  dropoutId: number;
  /** conv / dense: the parameters' name prefix (conv1, fc3, ...). */
  param?: string;
}

export function referenceSteps(spec: ArchSpec): ReferenceStep[] {
  const steps: ReferenceStep[] = [];
  let shape: Shape = { h: spec.input.height, w: spec.input.width, c: spec.input.channels };
  let convs = 0;
  let denses = 0;
  let pools = 0;
  let dropouts = 0;
  const step = (kind: StepKind, name: string, out: Shape, extra: Partial<ReferenceStep> = {}): void => {
    steps.push({ kind, name, in: shape, out, relu: false, k: 0, pad: 0, rate: 0, dropoutId: -1, ...extra });
    shape = out;
  };
  spec.layers.forEach((layer, li) => {
    switch (layer.type) {
      case 'conv': {
        const k = layer.kernel ?? 3;
        if (layer.padding === 'same') {
          const pad = (k - 1) / 2;
          step('pad', `pad${convs + 1}`, { h: shape.h + 2 * pad, w: shape.w + 2 * pad, c: shape.c }, { pad });
        }
        const name = `conv${++convs}`;
        step('conv', name, { h: shape.h - k + 1, w: shape.w - k + 1, c: layer.filters }, { k, param: name });
        break;
      }
      case 'relu': {
        const last = steps[steps.length - 1];
        if (last && !last.relu && (last.kind === 'conv' || last.kind === 'dense')) last.relu = true;
        else step('relu', `relu${li}`, shape);
        break;
      }
      case 'maxpool':
        step('maxpool', `pool${++pools}`, { h: shape.h / 2, w: shape.w / 2, c: shape.c });
        break;
      case 'dropout':
        step('dropout', `dropout${dropouts + 1}`, shape, { rate: layer.rate, dropoutId: dropouts++ });
        break;
      case 'flatten':
        step('flatten', 'flat', { h: 1, w: 1, c: shape.h * shape.w * shape.c });
        break;
      case 'dense': {
        const name = `fc${++denses}`;
        step('dense', name, { h: 1, w: 1, c: layer.units }, { param: name });
        break;
      }
    }
  });
  steps[steps.length - 1].name = 'logits';
  return steps;
}

export interface TensorInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** Every parameter tensor in the order of the flat parameter vector (spec order, weight then bias; PyTorch layouts). */
export function referenceLayout(spec: ArchSpec): TensorInfo[] {
  const out: TensorInfo[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]): void => {
    const size = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, offset, size });
    offset += size;
  };
  for (const s of referenceSteps(spec)) {
    if (s.kind === 'conv') add(`${s.param}.weight`, [s.out.c, s.in.c, s.k, s.k]);
    else if (s.kind === 'dense') add(`${s.param}.weight`, [s.out.c, s.in.c]);
    else continue;
    add(`${s.param}.bias`, [s.out.c]);
  }
  return out;
}

/** The flat parameter vector as one Float64Array per tensor, keyed by name. */
export function splitParameters(spec: ArchSpec, flat: Numbers): Map<string, Float64Array> {
  const layout = referenceLayout(spec);
  const total = layout.reduce((a, t) => a + t.size, 0);
  if (flat.length !== total) throw new Error(`expected ${total} parameters, got ${flat.length}`);
  return new Map(layout.map((t) => [t.name, Float64Array.from({ length: t.size }, (_, i) => flat[t.offset + i])]));
}

export function joinParameters(spec: ArchSpec, params: Map<string, Numbers>): Float64Array {
  const layout = referenceLayout(spec);
  const flat = new Float64Array(layout.reduce((a, t) => a + t.size, 0));
  for (const t of layout) flat.set(params.get(t.name)!, t.offset);
  return flat;
}

// ---------------------------------------------------------------------------------------------
// Configuration and dropout masks

/** What Model.trace() takes: the loss, and dropout (rate 0: none; < 0: each layer's own rate). */
export interface ReferenceConfig {
  temperature: number;
  lossScale: number;
  dropoutRate: number;
  dropoutSeed: number;
  step: number;
}

/** Per dropout layer (by its index), the multipliers of its [n][units] input, or null when it passes everything. */
export type Masks = Array<Float64Array | null>;

export function referenceMasks(spec: ArchSpec, n: number, cfg: ReferenceConfig | null): Masks {
  return referenceSteps(spec)
    .filter((s) => s.kind === 'dropout')
    .map((s) => {
      const rate = cfg === null || cfg.dropoutRate === 0 ? 0 : cfg.dropoutRate >= 0 ? cfg.dropoutRate : s.rate;
      return rate > 0 ? dropoutMask(cfg!.dropoutSeed, s.dropoutId, cfg!.step, n * s.in.h * s.in.w * s.in.c, rate) : null;
    });
}

// ---------------------------------------------------------------------------------------------
// Forward

/** One step's output [n][out] from its input [n][in] (and the max-pool winners). */
export function stepForward(
  s: ReferenceStep,
  params: Map<string, Numbers>,
  x: Numbers,
  n: number,
  masks: Masks,
): { y: Float64Array; argmax?: Int32Array } {
  const { h, w, c } = s.in;
  switch (s.kind) {
    case 'pad':
      return { y: padNhwc(x, n, h, w, c, s.pad) };
    case 'conv': {
      const y = convForward(x, n, h, w, c, params.get(`${s.param}.weight`)!, params.get(`${s.param}.bias`)!, s.out.c, s.k);
      return { y: s.relu ? relu(y) : y };
    }
    case 'relu':
      return { y: relu(x) };
    case 'maxpool':
      return maxPool2x2Forward(x, n, h, w, c);
    case 'dropout': {
      const mask = masks[s.dropoutId];
      return { y: mask ? applyMask(x, mask) : Float64Array.from(x) };
    }
    case 'flatten':
      return { y: flattenNhwcToChw(x, n, h, w, c) };
    case 'dense': {
      const y = denseForward(x, n, c * h * w, params.get(`${s.param}.weight`)!, params.get(`${s.param}.bias`)!, s.out.c);
      return { y: s.relu ? relu(y) : y };
    }
  }
}

/** A forward pass: every step's output (and max-pool winners), by step index. */
export interface ReferencePass {
  steps: ReferenceStep[];
  images: Float64Array;
  n: number;
  outputs: Float64Array[];
  argmax: Array<Int32Array | undefined>;
  logits: Float64Array;
}

/**
 * Forward pass of n images. With `resume`, the steps before `resume.from` (a step index) are
 * taken from `resume.pass` (same images, same parameters of those steps) and only the later ones
 * are recomputed: the finite-difference checks skip the layers a perturbed parameter cannot affect.
 */
export function referenceForward(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  images: Numbers,
  n: number,
  masks: Masks = [],
  resume?: { from: number; pass: ReferencePass },
): ReferencePass {
  const steps = resume?.pass.steps ?? referenceSteps(spec);
  const from = resume?.from ?? 0;
  const outputs = resume ? resume.pass.outputs.slice(0, from) : [];
  const argmax = resume ? resume.pass.argmax.slice(0, from) : [];
  const input = resume ? resume.pass.images : Float64Array.from(images);
  for (let i = from; i < steps.length; i++) {
    const r = stepForward(steps[i], params, i === 0 ? input : outputs[i - 1], n, masks);
    outputs[i] = r.y;
    argmax[i] = r.argmax;
  }
  return { steps, images: input, n, outputs, argmax, logits: outputs[outputs.length - 1] };
}

/** The index of the first step whose output depends on the parameter tensor `name`. */
export function stepOfParameter(steps: ReferenceStep[], name: string): number {
  return steps.findIndex((s) => s.param === name.split('.')[0]);
}

/**
 * Whether two passes took the same branch at every kink: the same on/off pattern of every ReLU
 * and the same max-pool winners. Between two such passes the network is a smooth function of
 * the parameters and input, so a central difference across them is valid.
 */
export function samePattern(a: ReferencePass, b: ReferencePass): boolean {
  for (let i = 0; i < a.steps.length; i++) {
    const s = a.steps[i];
    if (s.relu || s.kind === 'relu') {
      const x = a.outputs[i];
      const y = b.outputs[i];
      for (let k = 0; k < x.length; k++) if (x[k] > 0 !== y[k] > 0) return false;
    }
    if (s.kind === 'maxpool') {
      const x = a.argmax[i]!;
      const y = b.argmax[i]!;
      for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
    }
  }
  return true;
}

/** The float64 logits [n][classes] of n images (inference: no dropout). */
export function referenceLogits(spec: ArchSpec, params: Map<string, Numbers>, images: Numbers, n: number): Float64Array {
  return referenceForward(spec, params, images, n).logits;
}

// ---------------------------------------------------------------------------------------------
// Backward

/** Gradient w.r.t. the weights [cout][cin][k][k] and bias of a 'valid' k x k convolution. */
export function convBackwardWeights(
  x: Numbers,
  dy: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  cout: number,
  k: number,
): { weight: Float64Array; bias: Float64Array } {
  if (k === 3) return conv3x3BackwardWeights(x, dy, n, h, w, cin, cout);
  const ho = h - k + 1;
  const wo = w - k + 1;
  const weight = new Float64Array(cout * cin * k * k);
  const bias = new Float64Array(cout);
  for (let s = 0; s < n; s++)
    for (let oy = 0; oy < ho; oy++)
      for (let ox = 0; ox < wo; ox++)
        for (let o = 0; o < cout; o++) {
          const d = dy[((s * ho + oy) * wo + ox) * cout + o];
          bias[o] += d;
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++)
              for (let i = 0; i < cin; i++) weight[((o * cin + i) * k + ky) * k + kx] += d * x[((s * h + oy + ky) * w + ox + kx) * cin + i];
        }
  return { weight, bias };
}

/** One step's backward: the gradient w.r.t. its input from `g` w.r.t. its output (after the ReLU it owns). */
export function stepBackward(
  s: ReferenceStep,
  params: Map<string, Numbers>,
  input: Numbers,
  output: Numbers,
  g: Numbers,
  n: number,
  masks: Masks,
): { dx: Float64Array; preActivation?: Float64Array; weight?: Float64Array; bias?: Float64Array } {
  const { h, w, c } = s.in;
  switch (s.kind) {
    case 'pad':
      return { dx: cropNhwc(g, n, h + 2 * s.pad, w + 2 * s.pad, c, s.pad) };
    case 'conv': {
      const d = s.relu ? reluBackward(g, output) : Float64Array.from(g);
      const dw = convBackwardWeights(input, d, n, h, w, c, s.out.c, s.k);
      const dx = convBackwardData(d, n, h, w, c, params.get(`${s.param}.weight`)!, s.out.c, s.k);
      return { dx, preActivation: d, ...dw };
    }
    case 'relu':
      return { dx: reluBackward(g, output) };
    case 'maxpool':
      return { dx: maxPool2x2Backward(g, input, n, h, w, c) };
    case 'dropout': {
      const mask = masks[s.dropoutId];
      return { dx: mask ? applyMask(g, mask) : Float64Array.from(g) };
    }
    case 'flatten':
      return { dx: unflattenChwToNhwc(g, n, h, w, c) };
    case 'dense': {
      const d = s.relu ? reluBackward(g, output) : Float64Array.from(g);
      const dw = denseBackwardWeights(input, d, n, c * h * w, s.out.c);
      const dx = denseBackwardData(d, n, c * h * w, params.get(`${s.param}.weight`)!, s.out.c);
      return { dx, preActivation: d, ...dw };
    }
  }
}

export interface ReferenceBackward {
  dinput: Float64Array;
  /** Every parameter tensor's gradient, by name. */
  params: Map<string, Float64Array>;
  /** The trace's intermediate gradients: d_<conv or dense> (pre-activation) and d_flat. */
  named: Map<string, Float64Array>;
}

/** Backpropagation of `dlogits` [n][classes] through a forward pass. */
export function referenceBackward(
  params: Map<string, Numbers>,
  pass: ReferencePass,
  dlogits: Numbers,
  masks: Masks = [],
): ReferenceBackward {
  const { steps, n } = pass;
  const grads = new Map<string, Float64Array>();
  const named = new Map<string, Float64Array>();
  let g: Float64Array = Float64Array.from(dlogits);
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i];
    if (s.kind === 'flatten') named.set('d_flat', g);
    const r = stepBackward(s, params, i === 0 ? pass.images : pass.outputs[i - 1], pass.outputs[i], g, n, masks);
    if (r.preActivation && i !== steps.length - 1) named.set(`d_${s.name}`, r.preActivation);
    if (r.weight) grads.set(`${s.param}.weight`, r.weight);
    if (r.bias) grads.set(`${s.param}.bias`, r.bias);
    g = r.dx;
  }
  return { dinput: g, params: grads, named };
}

/** Tiles a pass of one image `rows` times, so that one backward pass takes `rows` seeds. */
export function repeatPass(pass: ReferencePass, rows: number): ReferencePass {
  const tile = (a: Float64Array): Float64Array => {
    const out = new Float64Array(a.length * rows);
    for (let r = 0; r < rows; r++) out.set(a, r * a.length);
    return out;
  };
  const tileIndices = (a: Int32Array | undefined, size: number): Int32Array | undefined => {
    if (!a) return undefined;
    const out = new Int32Array(a.length * rows);
    for (let r = 0; r < rows; r++) for (let k = 0; k < a.length; k++) out[r * a.length + k] = a[k] + r * size;
    return out;
  };
  return {
    steps: pass.steps,
    images: tile(pass.images),
    n: pass.n * rows,
    outputs: pass.outputs.map(tile),
    argmax: pass.argmax.map((a, i) => tileIndices(a, i === 0 ? pass.images.length : pass.outputs[i - 1].length)),
    logits: tile(pass.logits),
  };
}

/**
 * For one image: its logits and, for each row of seedsOf(logits) ([rows][classes]), the input
 * gradient of the linear function seed . z of the logits (vector-Jacobian products), [rows][input].
 */
export function referenceLogitGradients(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  image: Numbers,
  seedsOf: (logits: Float64Array) => Float64Array,
): { logits: Float64Array; gradients: Float64Array } {
  const pass = referenceForward(spec, params, image, 1);
  const seeds = seedsOf(pass.logits);
  const rows = seeds.length / pass.logits.length;
  return { logits: pass.logits, gradients: referenceBackward(params, repeatPass(pass, rows), seeds).dinput };
}

/** d(sum over samples of the cross-entropy at `temperature`)/d(images). */
export function referenceInputGradient(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  images: Numbers,
  labels: Numbers,
  n: number,
  temperature: number,
): Float64Array {
  // softmaxCrossEntropy's gradient is of the batch mean: times n for the per-sample sum.
  return referenceGradients(spec, params, images, labels, n, temperature, n).dinput;
}

/** The gradients of lossScale x the batch-mean cross-entropy at `temperature` (no dropout,
 * no L2), w.r.t. the images and every parameter tensor (by PyTorch name): what the engine's
 * trace returns as dinput and grad. */
export function referenceGradients(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  images: Numbers,
  labels: Numbers,
  n: number,
  temperature: number,
  lossScale = 1,
): { dinput: Float64Array; params: Map<string, Float64Array> } {
  const pass = referenceForward(spec, params, images, n);
  const classes = pass.logits.length / n;
  const { dlogits } = softmaxCrossEntropy(pass.logits, n, classes, labels, null, temperature, lossScale);
  const { dinput, params: grads } = referenceBackward(params, pass, dlogits);
  return { dinput, params: grads };
}

// ---------------------------------------------------------------------------------------------
// The counterpart of Model.trace()

/** lossScale * mean_s cross-entropy_s: the objective whose gradient the engine's trace returns. */
export function referenceObjective(
  pass: ReferencePass,
  labels: Numbers,
  softTargets: Numbers | null,
  cfg: Pick<ReferenceConfig, 'temperature' | 'lossScale'>,
): number {
  const { n } = pass;
  const { loss } = softmaxCrossEntropy(pass.logits, n, pass.logits.length / n, labels, softTargets, cfg.temperature, cfg.lossScale);
  let sum = 0;
  for (let s = 0; s < n; s++) sum += loss[s];
  return (cfg.lossScale * sum) / n;
}

/** The names of the tensors Model.trace() returns, with their per-sample shapes ([] for the loss; grad is flat). */
export function traceShapes(spec: ArchSpec): Record<string, number[]> {
  const steps = referenceSteps(spec);
  const dims = (s: Shape): number[] => (s.h === 1 && s.w === 1 ? [s.c] : [s.h, s.w, s.c]);
  const shapes: Record<string, number[]> = {};
  for (const s of steps) if (s.kind !== 'pad' && s.kind !== 'dropout') shapes[s.name] = dims(s.out);
  shapes.loss = [];
  shapes.dlogits = dims(steps[steps.length - 1].out);
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i];
    if (s.kind === 'flatten') shapes.d_flat = dims(s.out);
    if ((s.kind === 'conv' || s.kind === 'dense') && i !== steps.length - 1) shapes[`d_${s.name}`] = dims(s.out);
  }
  shapes.dinput = [spec.input.height, spec.input.width, spec.input.channels];
  return shapes;
}

/** Every activation and gradient Model.trace() returns, by the same names, and grad (flat, layout order). */
export function referenceTrace(
  spec: ArchSpec,
  parameters: Numbers,
  images: Numbers,
  labels: Numbers,
  softTargets: Numbers | null,
  n: number,
  cfg: ReferenceConfig,
): Record<string, Float64Array> {
  const params = splitParameters(spec, parameters);
  const masks = referenceMasks(spec, n, cfg);
  const pass = referenceForward(spec, params, images, n, masks);
  const classes = pass.logits.length / n;
  const xent = softmaxCrossEntropy(pass.logits, n, classes, labels, softTargets, cfg.temperature, cfg.lossScale);
  const back = referenceBackward(params, pass, xent.dlogits, masks);
  const out: Record<string, Float64Array> = {};
  pass.steps.forEach((s, i) => {
    if (s.kind !== 'pad' && s.kind !== 'dropout') out[s.name] = pass.outputs[i];
  });
  out.loss = xent.loss;
  out.dlogits = xent.dlogits;
  for (const [name, value] of back.named) out[name] = value;
  out.dinput = back.dinput;
  out.grad = joinParameters(spec, back.params);
  return out;
}

/** The logits [n][classes] and the input gradient of sum_i <dlogits_i, z_i> for the seeds that
 * `seeds(logits)` returns (a vector-Jacobian product of the network). */
export function referenceLogitVjp(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  images: Numbers,
  n: number,
  seeds: (logits: Float64Array) => Float64Array,
): { logits: Float64Array; dinput: Float64Array } {
  const pass = referenceForward(spec, params, images, n);
  return { logits: pass.logits, dinput: referenceBackward(params, pass, seeds(pass.logits)).dinput };
}
