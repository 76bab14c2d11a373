// Any network of an architecture spec in float64, built from the reference layers (layers.ts)
// by walking the spec's layers: the independent reference of the engine's run-time network.
// Inference only (dropout is the identity); the input gradient of the cross-entropy at a
// temperature by backpropagation through the same layers.
import type { ArchSpec } from '../../lib/arch';
import {
  conv3x3BackwardData,
  conv3x3BackwardWeights,
  denseBackwardWeights,
  conv3x3Forward,
  denseBackwardData,
  denseForward,
  flattenNhwcToChw,
  maxPool2x2Backward,
  maxPool2x2Forward,
  relu,
  reluBackward,
  softmaxCrossEntropy,
  unflattenChwToNhwc,
  type Numbers,
} from './layers';

interface Shape {
  h: number;
  w: number;
  c: number;
}

type Tape = Array<{ kind: string; inShape: Shape; input: Float64Array; output: Float64Array; param?: string; k?: number; pad?: number }>;

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

/** Forward pass of n images; `params` maps PyTorch names (conv1.weight, ..., fcK.bias) to values. */
function run(spec: ArchSpec, params: Map<string, Numbers>, images: Numbers, n: number): { logits: Float64Array; tape: Tape } {
  let shape: Shape = { h: spec.input.height, w: spec.input.width, c: spec.input.channels };
  let x: Float64Array = Float64Array.from(images);
  const tape: Tape = [];
  let convs = 0;
  let denses = 0;
  for (const layer of spec.layers) {
    const inShape = shape;
    const input = x;
    switch (layer.type) {
      case 'conv': {
        const k = layer.kernel ?? 3;
        let h = shape.h;
        let w = shape.w;
        let src = x;
        if (layer.padding === 'same') {
          const pad = (k - 1) / 2;
          src = padNhwc(x, n, h, w, shape.c, pad);
          tape.push({ kind: 'pad', inShape, input: x, output: src, pad });
          h += 2 * pad;
          w += 2 * pad;
        }
        const name = `conv${++convs}`;
        x = convForward(src, n, h, w, shape.c, params.get(`${name}.weight`)!, params.get(`${name}.bias`)!, layer.filters, k);
        tape.push({ kind: 'conv', inShape: { h, w, c: shape.c }, input: src, output: x, param: name, k });
        shape = { h: h - k + 1, w: w - k + 1, c: layer.filters };
        continue;
      }
      case 'relu':
        x = relu(x);
        break;
      case 'maxpool':
        x = maxPool2x2Forward(x, n, shape.h, shape.w, shape.c).y;
        shape = { h: shape.h / 2, w: shape.w / 2, c: shape.c };
        break;
      case 'dropout':
        continue; // the identity in inference
      case 'flatten':
        x = flattenNhwcToChw(x, n, shape.h, shape.w, shape.c);
        shape = { h: 1, w: 1, c: shape.h * shape.w * shape.c };
        break;
      case 'dense': {
        const name = `fc${++denses}`;
        x = denseForward(x, n, shape.c, params.get(`${name}.weight`)!, params.get(`${name}.bias`)!, layer.units);
        tape.push({ kind: 'dense', inShape, input, output: x, param: name });
        shape = { h: 1, w: 1, c: layer.units };
        continue;
      }
    }
    tape.push({ kind: layer.type, inShape, input, output: x });
  }
  return { logits: x, tape };
}

export function referenceLogits(spec: ArchSpec, params: Map<string, Numbers>, images: Numbers, n: number): Float64Array {
  return run(spec, params, images, n).logits;
}

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
  const { logits, tape } = run(spec, params, images, n);
  const classes = logits.length / n;
  return backpropagate(params, tape, n, softmaxCrossEntropy(logits, n, classes, labels, null, temperature, lossScale).dlogits);
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
  const { logits, tape } = run(spec, params, images, n);
  return { logits, dinput: backpropagate(params, tape, n, seeds(logits)).dinput };
}

function backpropagate(
  params: Map<string, Numbers>,
  tape: Tape,
  n: number,
  dlogits: Float64Array,
): { dinput: Float64Array; params: Map<string, Float64Array> } {
  const grads = new Map<string, Float64Array>();
  let g: Float64Array = dlogits;
  for (let i = tape.length - 1; i >= 0; i--) {
    const t = tape[i];
    const s = t.inShape;
    switch (t.kind) {
      case 'dense': {
        const w = params.get(`${t.param}.weight`)!;
        const out = t.output.length / n;
        const dw = denseBackwardWeights(t.input, g, n, s.c, out);
        grads.set(`${t.param}.weight`, dw.weight);
        grads.set(`${t.param}.bias`, dw.bias);
        g = denseBackwardData(g, n, s.c, w, out);
        break;
      }
      case 'conv': {
        const w = params.get(`${t.param}.weight`)!;
        const k = t.k!;
        const out = t.output.length / (n * (s.h - k + 1) * (s.w - k + 1));
        const dw = convBackwardWeights(t.input, g, n, s.h, s.w, s.c, out, k);
        grads.set(`${t.param}.weight`, dw.weight);
        grads.set(`${t.param}.bias`, dw.bias);
        g = convBackwardData(g, n, s.h, s.w, s.c, w, out, k);
        break;
      }
      case 'pad':
        g = cropNhwc(g, n, s.h + 2 * t.pad!, s.w + 2 * t.pad!, s.c, t.pad!);
        break;
      case 'relu':
        g = reluBackward(g, t.output);
        break;
      case 'maxpool':
        g = maxPool2x2Backward(g, t.input, n, s.h, s.w, s.c);
        break;
      case 'flatten':
        g = unflattenChwToNhwc(g, n, s.h, s.w, s.c);
        break;
    }
  }
  return { dinput: g, params: grads };
}
