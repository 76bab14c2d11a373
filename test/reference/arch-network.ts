// Any network of an architecture spec in float64, built from the reference layers (layers.ts)
// by walking the spec's layers: the independent reference of the engine's run-time network.
// Inference only (dropout is the identity); the input gradient of the cross-entropy at a
// temperature by backpropagation through the same layers.
import type { ArchSpec } from '../../lib/arch';
import {
  conv3x3BackwardData,
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

type Tape = Array<{ kind: string; inShape: Shape; input: Float64Array; output: Float64Array; param?: string }>;

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
        if ((layer.kernel ?? 3) !== 3) throw new Error('the reference has 3x3 convolutions only');
        let h = shape.h;
        let w = shape.w;
        let src = x;
        if (layer.padding === 'same') {
          src = padNhwc(x, n, h, w, shape.c, 1);
          tape.push({ kind: 'pad', inShape, input: x, output: src });
          h += 2;
          w += 2;
        }
        const name = `conv${++convs}`;
        x = conv3x3Forward(src, n, h, w, shape.c, params.get(`${name}.weight`)!, params.get(`${name}.bias`)!, layer.filters);
        tape.push({ kind: 'conv', inShape: { h, w, c: shape.c }, input: src, output: x, param: name });
        shape = { h: h - 2, w: w - 2, c: layer.filters };
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

/** d(sum over samples of the cross-entropy at `temperature`)/d(images). */
export function referenceInputGradient(
  spec: ArchSpec,
  params: Map<string, Numbers>,
  images: Numbers,
  labels: Numbers,
  n: number,
  temperature: number,
): Float64Array {
  const { logits, tape } = run(spec, params, images, n);
  const classes = logits.length / n;
  // softmaxCrossEntropy's gradient is of the batch mean: times n for the per-sample sum.
  let g: Float64Array = softmaxCrossEntropy(logits, n, classes, labels, null, temperature, n).dlogits;
  for (let i = tape.length - 1; i >= 0; i--) {
    const t = tape[i];
    const s = t.inShape;
    switch (t.kind) {
      case 'dense': {
        const w = params.get(`${t.param}.weight`)!;
        g = denseBackwardData(g, n, s.c, w, t.output.length / n);
        break;
      }
      case 'conv': {
        const w = params.get(`${t.param}.weight`)!;
        g = conv3x3BackwardData(g, n, s.h, s.w, s.c, w, t.output.length / (n * (s.h - 2) * (s.w - 2)));
        break;
      }
      case 'pad':
        g = cropNhwc(g, n, s.h + 2, s.w + 2, s.c, 1);
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
  return g;
}
