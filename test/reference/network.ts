// The whole network (Song 2017's MNIST CNN) in float64, built from the reference layers, with
// the same named tensors as the engine's Model.trace(). See layers.ts for layouts and conventions.
//
//   input  [n][28][28][1]       (an image's 784 pixels, row-major, are NHWC with C = 1)
//   conv1  [n][26][26][32] = ReLU(conv(input))
//   conv2  [n][24][24][32] = ReLU(conv(conv1))
//   pool1  [n][12][12][32] = maxpool(conv2)
//   conv3  [n][10][10][64] = ReLU(conv(pool1))
//   conv4  [n][8][8][64]   = ReLU(conv(conv3))
//   pool2  [n][4][4][64]   = maxpool(conv4)
//   flat   [n][1024]       = pool2 in (C, H, W) order
//   fc1    [n][200]        = ReLU(fc1.weight . dropout0(flat) + fc1.bias)
//   fc2    [n][200]        = ReLU(fc2.weight . dropout1(fc1) + fc2.bias)
//   logits [n][10]         = fc3.weight . dropout2(fc2) + fc3.bias
//   loss   [n]             per-sample cross-entropy at temperature T (unscaled)
//   Backward tensors: dlogits, d_fc2 / d_fc1 / d_conv4..d_conv1 (w.r.t. each layer's
//   PRE-activation), d_flat (w.r.t. flat, after dropout0's backward), dinput, and grad (all
//   parameters, flat, in LAYOUT order) of lossScale * mean cross-entropy (no L2 term).

import {
  applyMask,
  conv3x3BackwardData,
  conv3x3BackwardWeights,
  conv3x3Forward,
  denseBackwardData,
  denseBackwardWeights,
  denseForward,
  dropoutMask,
  flattenNhwcToChw,
  maxPool2x2Backward,
  maxPool2x2Forward,
  Numbers,
  relu,
  reluBackward,
  softmaxCrossEntropy,
  unflattenChwToNhwc,
} from './layers';

// ---------------------------------------------------------------------------------------------
// Parameters

export interface TensorInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

const SHAPES: Array<[string, number[]]> = [
  ['conv1.weight', [32, 1, 3, 3]],
  ['conv1.bias', [32]],
  ['conv2.weight', [32, 32, 3, 3]],
  ['conv2.bias', [32]],
  ['conv3.weight', [64, 32, 3, 3]],
  ['conv3.bias', [64]],
  ['conv4.weight', [64, 64, 3, 3]],
  ['conv4.bias', [64]],
  ['fc1.weight', [200, 1024]],
  ['fc1.bias', [200]],
  ['fc2.weight', [200, 200]],
  ['fc2.bias', [200]],
  ['fc3.weight', [10, 200]],
  ['fc3.bias', [10]],
];

/** Every parameter tensor, in the order of the flat parameter vector (PyTorch layouts). */
export const LAYOUT: TensorInfo[] = (() => {
  let offset = 0;
  return SHAPES.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const info = { name, shape, offset, size };
    offset += size;
    return info;
  });
})();

export const PARAMETER_COUNT = LAYOUT[LAYOUT.length - 1].offset + LAYOUT[LAYOUT.length - 1].size;

/** The parameters as one Float64Array per tensor, keyed by name. */
export type Params = Record<string, Float64Array>;

export function splitParameters(flat: Numbers): Params {
  if (flat.length !== PARAMETER_COUNT) throw new Error(`expected ${PARAMETER_COUNT} parameters, got ${flat.length}`);
  const p: Params = {};
  for (const t of LAYOUT) {
    const a = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) a[i] = flat[t.offset + i];
    p[t.name] = a;
  }
  return p;
}

export function joinParameters(p: Params): Float64Array {
  const flat = new Float64Array(PARAMETER_COUNT);
  for (const t of LAYOUT) flat.set(p[t.name], t.offset);
  return flat;
}

// ---------------------------------------------------------------------------------------------
// Configuration and dropout masks

export interface NetConfig {
  temperature: number;
  lossScale: number;
  dropoutRate: number;
  dropoutSeed: number;
  step: number;
}

export interface Masks {
  /** Multipliers of dropout0 on flat [n][1024], dropout1 on fc1 [n][200], dropout2 on fc2 [n][200]. */
  flat: Float64Array;
  fc1: Float64Array;
  fc2: Float64Array;
}

export function dropoutMasks(n: number, cfg: NetConfig): Masks {
  return {
    flat: dropoutMask(cfg.dropoutSeed, 0, cfg.step, n * 1024, cfg.dropoutRate),
    fc1: dropoutMask(cfg.dropoutSeed, 1, cfg.step, n * 200, cfg.dropoutRate),
    fc2: dropoutMask(cfg.dropoutSeed, 2, cfg.step, n * 200, cfg.dropoutRate),
  };
}

// ---------------------------------------------------------------------------------------------
// Forward

/** The forward stages in order; a stage's output depends only on earlier stages and its own parameters. */
export const STAGES = ['conv1', 'conv2', 'pool1', 'conv3', 'conv4', 'pool2', 'flat', 'fc1', 'fc2', 'logits'] as const;
export type Stage = (typeof STAGES)[number];

/** The first stage whose output depends on the given parameter tensor. */
export function stageOfParameter(name: string): Stage {
  const layer = name.split('.')[0];
  if (layer === 'fc3') return 'logits';
  return layer as Stage;
}

export interface Activations {
  conv1: Float64Array;
  conv2: Float64Array;
  pool1: Float64Array;
  pool1Argmax: Int32Array;
  conv3: Float64Array;
  conv4: Float64Array;
  pool2: Float64Array;
  pool2Argmax: Int32Array;
  flat: Float64Array;
  fc1: Float64Array;
  fc2: Float64Array;
  logits: Float64Array;
}

/**
 * Forward pass of n images. With `resume`, the stages before `resume.from` are taken from
 * `resume.activations` (which must come from the same images and parameters of those stages)
 * and only the later ones are recomputed: the finite-difference check uses this to skip the
 * convolutions that a perturbed fully connected weight cannot affect.
 */
export function forward(
  p: Params,
  images: Numbers,
  n: number,
  masks: Masks,
  resume?: { from: Stage; activations: Activations },
): Activations {
  const start = resume ? STAGES.indexOf(resume.from) : 0;
  const a = (resume ? { ...resume.activations } : {}) as Activations;
  const run = (stage: Stage): boolean => STAGES.indexOf(stage) >= start;

  if (run('conv1')) a.conv1 = relu(conv3x3Forward(images, n, 28, 28, 1, p['conv1.weight'], p['conv1.bias'], 32));
  if (run('conv2')) a.conv2 = relu(conv3x3Forward(a.conv1, n, 26, 26, 32, p['conv2.weight'], p['conv2.bias'], 32));
  if (run('pool1')) ({ y: a.pool1, argmax: a.pool1Argmax } = maxPool2x2Forward(a.conv2, n, 24, 24, 32));
  if (run('conv3')) a.conv3 = relu(conv3x3Forward(a.pool1, n, 12, 12, 32, p['conv3.weight'], p['conv3.bias'], 64));
  if (run('conv4')) a.conv4 = relu(conv3x3Forward(a.conv3, n, 10, 10, 64, p['conv4.weight'], p['conv4.bias'], 64));
  if (run('pool2')) ({ y: a.pool2, argmax: a.pool2Argmax } = maxPool2x2Forward(a.conv4, n, 8, 8, 64));
  if (run('flat')) a.flat = flattenNhwcToChw(a.pool2, n, 4, 4, 64);
  if (run('fc1')) a.fc1 = relu(denseForward(applyMask(a.flat, masks.flat), n, 1024, p['fc1.weight'], p['fc1.bias'], 200));
  if (run('fc2')) a.fc2 = relu(denseForward(applyMask(a.fc1, masks.fc1), n, 200, p['fc2.weight'], p['fc2.bias'], 200));
  if (run('logits')) a.logits = denseForward(applyMask(a.fc2, masks.fc2), n, 200, p['fc3.weight'], p['fc3.bias'], 10);
  return a;
}

/**
 * Whether two forward passes took the same branch at every kink: the same ReLU on/off pattern
 * in every ReLU layer and the same max-pool winners. Between two such passes the network is a
 * smooth function of the parameters and input, so a central difference across them is valid.
 */
export function sameActivationPattern(a: Activations, b: Activations): boolean {
  for (const key of ['conv1', 'conv2', 'conv3', 'conv4', 'fc1', 'fc2'] as const) {
    const x = a[key];
    const y = b[key];
    for (let i = 0; i < x.length; i++) if (x[i] > 0 !== y[i] > 0) return false;
  }
  for (const key of ['pool1Argmax', 'pool2Argmax'] as const) {
    const x = a[key];
    const y = b[key];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Loss and backward

/** lossScale * mean_s cross-entropy_s: the objective whose gradient the engine's trace returns. */
export function objective(a: Activations, n: number, labels: Numbers, softTargets: Numbers | null, cfg: NetConfig): number {
  const { loss } = softmaxCrossEntropy(a.logits, n, 10, labels, softTargets, cfg.temperature, cfg.lossScale);
  let sum = 0;
  for (let s = 0; s < n; s++) sum += loss[s];
  return (cfg.lossScale * sum) / n;
}

export interface Gradients {
  loss: Float64Array;
  dlogits: Float64Array;
  d_fc2: Float64Array;
  d_fc1: Float64Array;
  d_flat: Float64Array;
  d_conv4: Float64Array;
  d_conv3: Float64Array;
  d_conv2: Float64Array;
  d_conv1: Float64Array;
  dinput: Float64Array;
  /** Parameter gradient per tensor. */
  params: Params;
  /** The same, flat, in LAYOUT order. */
  grad: Float64Array;
}

export function backward(
  p: Params,
  images: Numbers,
  n: number,
  masks: Masks,
  a: Activations,
  labels: Numbers,
  softTargets: Numbers | null,
  cfg: NetConfig,
  /** Backpropagate this gradient w.r.t. the logits instead of the cross-entropy's. */
  dlogitsOverride?: Float64Array,
): Gradients {
  const xent = softmaxCrossEntropy(a.logits, n, 10, labels, softTargets, cfg.temperature, cfg.lossScale);
  const dlogits = dlogitsOverride ?? xent.dlogits;

  // fc3, dropout2, ReLU of fc2
  const fc3 = denseBackwardWeights(applyMask(a.fc2, masks.fc2), dlogits, n, 200, 10);
  const d_fc2 = reluBackward(applyMask(denseBackwardData(dlogits, n, 200, p['fc3.weight'], 10), masks.fc2), a.fc2);
  // fc2, dropout1, ReLU of fc1
  const fc2 = denseBackwardWeights(applyMask(a.fc1, masks.fc1), d_fc2, n, 200, 200);
  const d_fc1 = reluBackward(applyMask(denseBackwardData(d_fc2, n, 200, p['fc2.weight'], 200), masks.fc1), a.fc1);
  // fc1, dropout0
  const fc1 = denseBackwardWeights(applyMask(a.flat, masks.flat), d_fc1, n, 1024, 200);
  const d_flat = applyMask(denseBackwardData(d_fc1, n, 1024, p['fc1.weight'], 200), masks.flat);
  // flatten, pool2, ReLU of conv4
  const d_pool2 = unflattenChwToNhwc(d_flat, n, 4, 4, 64);
  const d_conv4 = reluBackward(maxPool2x2Backward(d_pool2, a.conv4, n, 8, 8, 64), a.conv4);
  // conv4, ReLU of conv3
  const conv4 = conv3x3BackwardWeights(a.conv3, d_conv4, n, 10, 10, 64, 64);
  const d_conv3 = reluBackward(conv3x3BackwardData(d_conv4, n, 10, 10, 64, p['conv4.weight'], 64), a.conv3);
  // conv3, pool1, ReLU of conv2
  const conv3 = conv3x3BackwardWeights(a.pool1, d_conv3, n, 12, 12, 32, 64);
  const d_pool1 = conv3x3BackwardData(d_conv3, n, 12, 12, 32, p['conv3.weight'], 64);
  const d_conv2 = reluBackward(maxPool2x2Backward(d_pool1, a.conv2, n, 24, 24, 32), a.conv2);
  // conv2, ReLU of conv1
  const conv2 = conv3x3BackwardWeights(a.conv1, d_conv2, n, 26, 26, 32, 32);
  const d_conv1 = reluBackward(conv3x3BackwardData(d_conv2, n, 26, 26, 32, p['conv2.weight'], 32), a.conv1);
  // conv1, input
  const conv1 = conv3x3BackwardWeights(images, d_conv1, n, 28, 28, 1, 32);
  const dinput = conv3x3BackwardData(d_conv1, n, 28, 28, 1, p['conv1.weight'], 32);

  const params: Params = {
    'conv1.weight': conv1.weight,
    'conv1.bias': conv1.bias,
    'conv2.weight': conv2.weight,
    'conv2.bias': conv2.bias,
    'conv3.weight': conv3.weight,
    'conv3.bias': conv3.bias,
    'conv4.weight': conv4.weight,
    'conv4.bias': conv4.bias,
    'fc1.weight': fc1.weight,
    'fc1.bias': fc1.bias,
    'fc2.weight': fc2.weight,
    'fc2.bias': fc2.bias,
    'fc3.weight': fc3.weight,
    'fc3.bias': fc3.bias,
  };
  return {
    loss: xent.loss,
    dlogits,
    d_fc2,
    d_fc1,
    d_flat,
    d_conv4,
    d_conv3,
    d_conv2,
    d_conv1,
    dinput,
    params,
    grad: joinParameters(params),
  };
}

/** Names of the tensors that Model.trace() returns, with their per-sample shapes. */
export const TRACE_SHAPES: Record<string, number[]> = {
  conv1: [26, 26, 32],
  conv2: [24, 24, 32],
  pool1: [12, 12, 32],
  conv3: [10, 10, 64],
  conv4: [8, 8, 64],
  pool2: [4, 4, 64],
  flat: [1024],
  fc1: [200],
  fc2: [200],
  logits: [10],
  loss: [],
  dlogits: [10],
  d_fc2: [200],
  d_fc1: [200],
  d_flat: [1024],
  d_conv4: [8, 8, 64],
  d_conv3: [10, 10, 64],
  d_conv2: [24, 24, 32],
  d_conv1: [26, 26, 32],
  dinput: [28, 28, 1],
};

/** The reference counterpart of Model.trace(): every activation and gradient, by the same names. */
export function referenceTrace(
  parameters: Numbers,
  images: Numbers,
  labels: Numbers,
  softTargets: Numbers | null,
  n: number,
  cfg: NetConfig,
): Record<string, Float64Array> {
  const p = splitParameters(parameters);
  const masks = dropoutMasks(n, cfg);
  const a = forward(p, images, n, masks);
  const g = backward(p, images, n, masks, a, labels, softTargets, cfg);
  return {
    conv1: a.conv1,
    conv2: a.conv2,
    pool1: a.pool1,
    conv3: a.conv3,
    conv4: a.conv4,
    pool2: a.pool2,
    flat: a.flat,
    fc1: a.fc1,
    fc2: a.fc2,
    logits: a.logits,
    loss: g.loss,
    dlogits: g.dlogits,
    d_fc2: g.d_fc2,
    d_fc1: g.d_fc1,
    d_flat: g.d_flat,
    d_conv4: g.d_conv4,
    d_conv3: g.d_conv3,
    d_conv2: g.d_conv2,
    d_conv1: g.d_conv1,
    dinput: g.dinput,
    grad: g.grad,
  };
}
