// Float64 reference implementations of every layer of the network, written as plain loops from
// the specification. They are deliberately slow and obvious: each output element is computed by
// the textbook formula, and each backward pass scatters or sums exactly as the chain rule says.
// Inputs may be any array of numbers (Float32Array from the engine, Float64Array from other
// reference layers); every result is a new Float64Array.
//
// Layouts (all row-major, last index fastest):
//   activation  NHWC        x[((s * H + y) * W + x) * C + c]      (s = sample; channels last)
//   conv weight [out][in][ky][kx]  w[((o * Cin + i) * 3 + ky) * 3 + kx]   (PyTorch's layout)
//   conv bias   [out]
//   dense weight [out][in]  w[o * In + i]                          (PyTorch's layout)
//   dense activation [n][units]  a[s * units + u]
//   flat        [n][C*H*W] in PyTorch's (C, H, W) order: flat[s][c*H*W + y*W + x] = x_nhwc[s][y][x][c]
//
// Conventions:
//   conv3x3: 'valid' (no padding), stride 1, bias; cross-correlation (no kernel flip), as PyTorch:
//            y[s][oy][ox][o] = b[o] + sum_{i,ky,kx} w[o][i][ky][kx] * x[s][oy+ky][ox+kx][i]
//   ReLU backward: dx = dy where the ReLU's OUTPUT is > 0, else 0.
//   max pool 2x2 stride 2: candidates in raster order (top-left, top-right, bottom-left,
//            bottom-right); a later candidate wins only if strictly greater, so ties go to the
//            first. Backward routes the gradient to that one position only.
//   dropout: element i (= sample * units + unit) of layer L at step S is kept iff
//            uniform24(seed, 16 + L, S, i) >= rate; kept values are multiplied by
//            fround(1 / fround(1 - rate)). The backward multiplies by the same mask.
//   softmax cross-entropy at temperature T: z' = z / T, lse = logsumexp(z'),
//            loss_s = sum_j t_j (lse - z'_j)  (t = one-hot label, or a soft-target row),
//            dlogits_s = lossScale * (softmax(z'_s) - t_s) / (T * n), the gradient of
//            lossScale * mean_s loss_s.

import { uniform24 } from './rng';

export type Numbers = ArrayLike<number>;

/**
 * The values as a Float64Array (the array itself when it already is one). Every layer converts
 * its inputs first: the loops then only ever see one array type, which keeps V8 from falling
 * back to its slow generic element access (the engine's Float32Arrays come from another realm
 * under jest, so mixing them in would make the same loops several times slower).
 */
export function f64(a: Numbers): Float64Array {
  return a instanceof Float64Array ? a : Float64Array.from(a as ArrayLike<number>);
}

// ---------------------------------------------------------------------------------------------
// 3x3 convolution
//
// The loops index the weight through a copy repacked from PyTorch's [out][in][ky][kx] to
// [out][ky][kx][in] (packConvWeight), so the innermost loop, over input channels, reads both
// the NHWC activation and the weight contiguously. The arithmetic is unchanged.

/** PyTorch's conv weight [cout][cin][3][3] repacked as [cout][3][3][cin]. */
export function packConvWeight(weight: Float64Array, cout: number, cin: number): Float64Array {
  const packed = new Float64Array(cout * 9 * cin);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let k = 0; k < 9; k++) packed[(o * 9 + k) * cin + i] = weight[(o * cin + i) * 9 + k];
    }
  }
  return packed;
}

/** The inverse of packConvWeight: [cout][3][3][cin] back to [cout][cin][3][3]. */
export function unpackConvWeight(packed: Float64Array, cout: number, cin: number): Float64Array {
  const weight = new Float64Array(cout * cin * 9);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let k = 0; k < 9; k++) weight[(o * cin + i) * 9 + k] = packed[(o * 9 + k) * cin + i];
    }
  }
  return weight;
}

/** Pre-activation output [n][h-2][w-2][cout] of a 'valid' 3x3 convolution of x [n][h][w][cin]. */
export function conv3x3Forward(
  xIn: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  weightIn: Numbers,
  biasIn: Numbers,
  cout: number,
): Float64Array {
  const x = f64(xIn);
  const wp = packConvWeight(f64(weightIn), cout, cin); // wp[((o*3 + ky)*3 + kx)*cin + i] = weight[o][i][ky][kx]
  const bias = f64(biasIn);
  const ho = h - 2;
  const wo = w - 2;
  const y = new Float64Array(n * ho * wo * cout);
  for (let s = 0; s < n; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let o = 0; o < cout; o++) {
          let sum = bias[o];
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const xBase = ((s * h + oy + ky) * w + ox + kx) * cin; // x[s][oy+ky][ox+kx][0]
              const wBase = ((o * 3 + ky) * 3 + kx) * cin; // weight[o][0][ky][kx]
              for (let i = 0; i < cin; i++) sum += wp[wBase + i] * x[xBase + i];
            }
          }
          y[((s * ho + oy) * wo + ox) * cout + o] = sum;
        }
      }
    }
  }
  return y;
}

/** Gradient w.r.t. the conv's input x [n][h][w][cin], given dy [n][h-2][w-2][cout] (pre-activation). */
export function conv3x3BackwardData(
  dyIn: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  weightIn: Numbers,
  cout: number,
): Float64Array {
  const dy = f64(dyIn);
  const wp = packConvWeight(f64(weightIn), cout, cin);
  const ho = h - 2;
  const wo = w - 2;
  const dx = new Float64Array(n * h * w * cin);
  for (let s = 0; s < n; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let o = 0; o < cout; o++) {
          const g = dy[((s * ho + oy) * wo + ox) * cout + o];
          if (g === 0) continue;
          // y[s][oy][ox][o] used x[s][oy+ky][ox+kx][i] with weight[o][i][ky][kx]: send g back along it.
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const xBase = ((s * h + oy + ky) * w + ox + kx) * cin;
              const wBase = ((o * 3 + ky) * 3 + kx) * cin;
              for (let i = 0; i < cin; i++) dx[xBase + i] += g * wp[wBase + i];
            }
          }
        }
      }
    }
  }
  return dx;
}

/** Gradients of the conv's weight [cout][cin][3][3] and bias [cout], given its input x and dy. */
export function conv3x3BackwardWeights(
  xIn: Numbers,
  dyIn: Numbers,
  n: number,
  h: number,
  w: number,
  cin: number,
  cout: number,
): { weight: Float64Array; bias: Float64Array } {
  const x = f64(xIn);
  const dy = f64(dyIn);
  const ho = h - 2;
  const wo = w - 2;
  const dwPacked = new Float64Array(cout * 9 * cin); // [o][ky][kx][i], unpacked at the end
  const db = new Float64Array(cout);
  for (let s = 0; s < n; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let o = 0; o < cout; o++) {
          const g = dy[((s * ho + oy) * wo + ox) * cout + o];
          db[o] += g;
          if (g === 0) continue;
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const xBase = ((s * h + oy + ky) * w + ox + kx) * cin;
              const wBase = ((o * 3 + ky) * 3 + kx) * cin;
              for (let i = 0; i < cin; i++) dwPacked[wBase + i] += g * x[xBase + i];
            }
          }
        }
      }
    }
  }
  return { weight: unpackConvWeight(dwPacked, cout, cin), bias: db };
}

// ---------------------------------------------------------------------------------------------
// ReLU

export function relu(xIn: Numbers): Float64Array {
  const x = f64(xIn);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
  return y;
}

/** dx = dy where the ReLU's output y is > 0, else 0. */
export function reluBackward(dyIn: Numbers, yIn: Numbers): Float64Array {
  const dy = f64(dyIn);
  const y = f64(yIn);
  if (dy.length !== y.length) throw new Error(`reluBackward: ${dy.length} gradients for ${y.length} outputs`);
  const dx = new Float64Array(dy.length);
  for (let i = 0; i < dy.length; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
  return dx;
}

// ---------------------------------------------------------------------------------------------
// 2x2 max pool, stride 2

/**
 * Max pool of x [n][h][w][c] to [n][h/2][w/2][c]. `argmax[j]` is the index in x of the element
 * chosen for output j: the first maximum in raster order (ties go to the earlier position).
 */
export function maxPool2x2Forward(xIn: Numbers, n: number, h: number, w: number, c: number): { y: Float64Array; argmax: Int32Array } {
  const x = f64(xIn);
  const ho = h >> 1;
  const wo = w >> 1;
  const y = new Float64Array(n * ho * wo * c);
  const argmax = new Int32Array(n * ho * wo * c);
  for (let s = 0; s < n; s++) {
    for (let py = 0; py < ho; py++) {
      for (let px = 0; px < wo; px++) {
        for (let ch = 0; ch < c; ch++) {
          // Raster order: (2py, 2px), (2py, 2px+1), (2py+1, 2px), (2py+1, 2px+1).
          const candidates = [
            ((s * h + 2 * py) * w + 2 * px) * c + ch,
            ((s * h + 2 * py) * w + 2 * px + 1) * c + ch,
            ((s * h + 2 * py + 1) * w + 2 * px) * c + ch,
            ((s * h + 2 * py + 1) * w + 2 * px + 1) * c + ch,
          ];
          let best = candidates[0];
          for (let k = 1; k < 4; k++) {
            if (x[candidates[k]] > x[best]) best = candidates[k];
          }
          const j = ((s * ho + py) * wo + px) * c + ch;
          y[j] = x[best];
          argmax[j] = best;
        }
      }
    }
  }
  return { y, argmax };
}

/** Gradient w.r.t. the pool's input x [n][h][w][c] given dy [n][h/2][w/2][c]. */
export function maxPool2x2Backward(dyIn: Numbers, xIn: Numbers, n: number, h: number, w: number, c: number): Float64Array {
  const dy = f64(dyIn);
  const x = f64(xIn);
  const { argmax } = maxPool2x2Forward(x, n, h, w, c);
  if (dy.length !== argmax.length) throw new Error(`maxPool2x2Backward: ${dy.length} gradients for ${argmax.length} outputs`);
  const dx = new Float64Array(n * h * w * c);
  for (let j = 0; j < argmax.length; j++) dx[argmax[j]] += dy[j];
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Flatten (NHWC -> PyTorch's CHW order) and its inverse

export function flattenNhwcToChw(xIn: Numbers, n: number, h: number, w: number, c: number): Float64Array {
  const x = f64(xIn);
  const flat = new Float64Array(n * c * h * w);
  for (let s = 0; s < n; s++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let ch = 0; ch < c; ch++) {
          flat[s * c * h * w + ch * h * w + y * w + xx] = x[((s * h + y) * w + xx) * c + ch];
        }
      }
    }
  }
  return flat;
}

export function unflattenChwToNhwc(flatIn: Numbers, n: number, h: number, w: number, c: number): Float64Array {
  const flat = f64(flatIn);
  const x = new Float64Array(n * h * w * c);
  for (let s = 0; s < n; s++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let ch = 0; ch < c; ch++) {
          x[((s * h + y) * w + xx) * c + ch] = flat[s * c * h * w + ch * h * w + y * w + xx];
        }
      }
    }
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Dense (fully connected)

/** y [n][outF] = weight [outF][inF] . x [n][inF] + bias (pre-activation). */
export function denseForward(xIn: Numbers, n: number, inF: number, weightIn: Numbers, biasIn: Numbers, outF: number): Float64Array {
  const x = f64(xIn);
  const weight = f64(weightIn);
  const bias = f64(biasIn);
  const y = new Float64Array(n * outF);
  for (let s = 0; s < n; s++) {
    for (let o = 0; o < outF; o++) {
      let sum = bias[o];
      for (let i = 0; i < inF; i++) sum += weight[o * inF + i] * x[s * inF + i];
      y[s * outF + o] = sum;
    }
  }
  return y;
}

/** dx [n][inF] = weight^T . dy. */
export function denseBackwardData(dyIn: Numbers, n: number, inF: number, weightIn: Numbers, outF: number): Float64Array {
  const dy = f64(dyIn);
  const weight = f64(weightIn);
  const dx = new Float64Array(n * inF);
  for (let s = 0; s < n; s++) {
    for (let i = 0; i < inF; i++) {
      let sum = 0;
      for (let o = 0; o < outF; o++) sum += weight[o * inF + i] * dy[s * outF + o];
      dx[s * inF + i] = sum;
    }
  }
  return dx;
}

/** dW [outF][inF] = sum_s dy[s] x[s]^T, db = sum_s dy[s]. */
export function denseBackwardWeights(
  xIn: Numbers,
  dyIn: Numbers,
  n: number,
  inF: number,
  outF: number,
): { weight: Float64Array; bias: Float64Array } {
  const x = f64(xIn);
  const dy = f64(dyIn);
  const dw = new Float64Array(outF * inF);
  const db = new Float64Array(outF);
  for (let o = 0; o < outF; o++) {
    for (let s = 0; s < n; s++) {
      const g = dy[s * outF + o];
      db[o] += g;
      for (let i = 0; i < inF; i++) dw[o * inF + i] += g * x[s * inF + i];
    }
  }
  return { weight: dw, bias: db };
}

// ---------------------------------------------------------------------------------------------
// Dropout

/** The factor applied to kept elements: fround(1 / fround(1 - rate)) (float32 arithmetic). */
export function dropoutKeepScale(rate: number): number {
  return Math.fround(1 / Math.fround(1 - rate));
}

/**
 * The multiplier of each of `count` elements (= n * units) of dropout layer `layer` (0: on flat,
 * 1: on fc1's output, 2: on fc2's output) at `step`: 0 if dropped, the keep scale if kept, and 1
 * everywhere when rate <= 0 (dropout off).
 */
export function dropoutMask(seed: number, layer: number, step: number, count: number, rate: number): Float64Array {
  const mask = new Float64Array(count);
  if (!(rate > 0)) {
    mask.fill(1);
    return mask;
  }
  const scale = dropoutKeepScale(rate);
  for (let i = 0; i < count; i++) {
    mask[i] = uniform24(seed, 16 + layer, step, i) >= rate ? scale : 0;
  }
  return mask;
}

/** Elementwise x * mask (dropout forward; also its backward, applied to a gradient). */
export function applyMask(xIn: Numbers, maskIn: Numbers): Float64Array {
  const x = f64(xIn);
  const mask = f64(maskIn);
  if (x.length !== mask.length) throw new Error(`applyMask: ${x.length} values for a mask of ${mask.length}`);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * mask[i];
  return y;
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy with temperature, soft targets and loss scale

export interface CrossEntropy {
  /** Per-sample cross-entropy at temperature T (unscaled). */
  loss: Float64Array;
  /** Gradient of lossScale * mean_s loss_s w.r.t. the logits. */
  dlogits: Float64Array;
  /** softmax(z / T) per sample. */
  probabilities: Float64Array;
}

/**
 * Targets t [n][classes]: the soft-target rows when given, else one-hot labels.
 */
export function targetRows(labels: Numbers, softTargets: Numbers | null, n: number, classes: number): Float64Array {
  const t = new Float64Array(n * classes);
  for (let s = 0; s < n; s++) {
    if (softTargets) {
      for (let j = 0; j < classes; j++) t[s * classes + j] = softTargets[s * classes + j];
    } else {
      t[s * classes + labels[s]] = 1;
    }
  }
  return t;
}

export function softmaxCrossEntropy(
  logitsIn: Numbers,
  n: number,
  classes: number,
  labels: Numbers,
  softTargets: Numbers | null,
  temperature: number,
  lossScale: number,
): CrossEntropy {
  const logits = f64(logitsIn);
  const t = targetRows(labels, softTargets, n, classes);
  const loss = new Float64Array(n);
  const dlogits = new Float64Array(n * classes);
  const probabilities = new Float64Array(n * classes);
  for (let s = 0; s < n; s++) {
    const z = new Float64Array(classes);
    let max = -Infinity;
    for (let j = 0; j < classes; j++) {
      z[j] = logits[s * classes + j] / temperature;
      if (z[j] > max) max = z[j];
    }
    let sumExp = 0;
    for (let j = 0; j < classes; j++) sumExp += Math.exp(z[j] - max);
    const lse = max + Math.log(sumExp);
    let l = 0;
    for (let j = 0; j < classes; j++) {
      const p = Math.exp(z[j] - lse);
      const tj = t[s * classes + j];
      probabilities[s * classes + j] = p;
      if (tj !== 0) l += tj * (lse - z[j]);
      dlogits[s * classes + j] = (lossScale * (p - tj)) / (temperature * n);
    }
    loss[s] = l;
  }
  return { loss, dlogits, probabilities };
}
