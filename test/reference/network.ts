// The paper's network (Song 2017's MNIST CNN, spec `paper-mnist`) in float64: the spec-built
// reference of arch-network.ts bound to that one spec, with the names the paper-only tests use.
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
import { namedArch } from '../../lib/arch';
import {
  Masks,
  ReferenceBackward,
  ReferenceConfig,
  ReferencePass,
  TensorInfo,
  joinParameters as joinBySpec,
  referenceBackward,
  referenceForward,
  referenceLayout,
  referenceMasks,
  referenceObjective,
  referenceSteps,
  referenceTrace as traceBySpec,
  samePattern,
  splitParameters as splitBySpec,
  stepOfParameter,
  traceShapes,
} from './arch-network';
import { softmaxCrossEntropy, type Numbers } from './layers';

export type { Masks, TensorInfo };

export const PAPER_SPEC = namedArch('paper-mnist');
const STEPS = referenceSteps(PAPER_SPEC);

/** Every parameter tensor, in the order of the flat parameter vector (PyTorch layouts). */
export const LAYOUT: TensorInfo[] = referenceLayout(PAPER_SPEC);
export const PARAMETER_COUNT = LAYOUT[LAYOUT.length - 1].offset + LAYOUT[LAYOUT.length - 1].size;

/** The parameters as one Float64Array per tensor, keyed by name. */
export type Params = Record<string, Float64Array>;

export function splitParameters(flat: Numbers): Params {
  return Object.fromEntries(splitBySpec(PAPER_SPEC, flat));
}

export function joinParameters(p: Params): Float64Array {
  return joinBySpec(PAPER_SPEC, new Map(Object.entries(p)));
}

export type NetConfig = ReferenceConfig;

/** The masks of dropout0 (on flat [n][1024]), dropout1 (fc1 [n][200]) and dropout2 (fc2 [n][200]); null: none. */
export function dropoutMasks(n: number, cfg: NetConfig): Masks {
  return referenceMasks(PAPER_SPEC, n, cfg);
}

/** The traced stages in order (each a step of the network). */
export const STAGES = STEPS.filter((s) => s.kind !== 'dropout').map((s) => s.name);
export type Stage = string;

/** The first stage whose output depends on the given parameter tensor. */
export function stageOfParameter(name: string): Stage {
  return STEPS[stepOfParameter(STEPS, name)].name;
}

/** A forward pass; `stage(a, 'conv3')` is one stage's output. */
export type Activations = ReferencePass;

export function stage(a: Activations, name: Stage): Float64Array {
  return a.outputs[STEPS.findIndex((s) => s.name === name)];
}

/**
 * Forward pass of n images. With `resume`, the stages before `resume.from` are taken from
 * `resume.activations` (same images and parameters of those stages) and only the later ones
 * are recomputed.
 */
export function forward(
  p: Params,
  images: Numbers,
  n: number,
  masks: Masks,
  resume?: { from: Stage; activations: Activations },
): Activations {
  const params = new Map(Object.entries(p));
  const r = resume ? { from: STEPS.findIndex((s) => s.name === resume.from), pass: resume.activations } : undefined;
  return referenceForward(PAPER_SPEC, params, images, n, masks, r);
}

/** Same ReLU on/off pattern and max-pool winners in both passes (no kink in between). */
export const sameActivationPattern = samePattern;

/** lossScale * mean_s cross-entropy_s: the objective whose gradient the engine's trace returns. */
export function objective(a: Activations, _n: number, labels: Numbers, softTargets: Numbers | null, cfg: NetConfig): number {
  return referenceObjective(a, labels, softTargets, cfg);
}

export interface Gradients extends Omit<ReferenceBackward, 'params'> {
  /** Parameter gradients per tensor. */
  params: Params;
  loss: Float64Array;
  dlogits: Float64Array;
  /** Parameter gradients, flat, in LAYOUT order. */
  grad: Float64Array;
}

export function backward(
  p: Params,
  _images: Numbers,
  _n: number,
  masks: Masks,
  a: Activations,
  labels: Numbers,
  softTargets: Numbers | null,
  cfg: NetConfig,
  /** Backpropagate this gradient w.r.t. the logits instead of the cross-entropy's. */
  dlogitsOverride?: Float64Array,
): Gradients {
  const xent = softmaxCrossEntropy(a.logits, a.n, 10, labels, softTargets, cfg.temperature, cfg.lossScale);
  const dlogits = dlogitsOverride ?? xent.dlogits;
  const back = referenceBackward(new Map(Object.entries(p)), a, dlogits, masks);
  return { ...back, params: Object.fromEntries(back.params), loss: xent.loss, dlogits, grad: joinBySpec(PAPER_SPEC, back.params) };
}

/** Names of the tensors that Model.trace() returns, with their per-sample shapes. */
export const TRACE_SHAPES: Record<string, number[]> = traceShapes(PAPER_SPEC);

/** The reference counterpart of Model.trace(): every activation and gradient, by the same names. */
export function referenceTrace(
  parameters: Numbers,
  images: Numbers,
  labels: Numbers,
  softTargets: Numbers | null,
  n: number,
  cfg: NetConfig,
): Record<string, Float64Array> {
  return traceBySpec(PAPER_SPEC, parameters, images, labels, softTargets, n, cfg);
}
