// Reference of createModel(backend, seed)'s initial weights (Glorot uniform), from the spec:
// for the tensor with id k (its index in LAYOUT, biases included), every weight element i is
//   u = uniform24(seed, 1, k, i)                    (stream hi = 1, lo = tensor id)
//   w[i] = fround((2u - 1) * limit),  limit = sqrt(6 / (fan_in + fan_out)), computed in float64,
// with fan_in = in_channels * 9 and fan_out = out_channels * 9 for a conv weight
// [out][in][3][3], and fan_in = in_features, fan_out = out_features for a dense weight
// [out][in]. Biases are 0.

import { LAYOUT, PARAMETER_COUNT, TensorInfo } from './network';
import { uniform24 } from './rng';

// Read once: `Math.x` looked up in a hot loop is slow under jest (vm context globals).
const fround = Math.fround;

export function glorotLimit(t: TensorInfo): number {
  const receptive = t.shape.length === 4 ? t.shape[2] * t.shape[3] : 1;
  const fanIn = t.shape[1] * receptive;
  const fanOut = t.shape[0] * receptive;
  return Math.sqrt(6 / (fanIn + fanOut));
}

/** The flat parameter vector that createModel(backend, seed) starts from. */
export function glorotParameters(seed: number): Float32Array {
  const out = new Float32Array(PARAMETER_COUNT);
  LAYOUT.forEach((t, id) => {
    if (t.shape.length === 1) return; // bias: 0
    const limit = glorotLimit(t);
    for (let i = 0; i < t.size; i++) {
      const u = uniform24(seed, 1, id, i);
      out[t.offset + i] = fround((2 * u - 1) * limit);
    }
  });
  return out;
}
