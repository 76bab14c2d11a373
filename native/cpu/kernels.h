// The instruction-set-specific kernels of the CPU backend. Each *_kernels.cpp file is
// compiled once per instruction set (see simd.h); kernel_table.cpp collects each copy into
// a KernelTable and active_kernels() returns the best one this processor supports.
#pragma once

#include <cstdint>

#include "tempered/counter_rng.h"

namespace tempered {
namespace cpu {

class ThreadPool;

// A 'valid' 3x3 convolution over NHWC images with weights packed as
// packed_w[(ky * 3 + kx) * in_c + c][k] (row length k_pad, zero beyond out_c) and a bias
// padded to k_pad. Computes output rows [oy0, oy1) and columns [ox0, ox1) of images
// [n0, n1): a full layer uses the whole range, the Algorithm-2 sweep a window.
struct ConvWindow {
  int in_h, in_w, in_c, out_c, k_pad;
  const float* x;         // [n][in_h][in_w][in_c]
  const float* packed_w;  // [9 * in_c][k_pad]
  const float* packed_b;  // [k_pad]
  float* y;               // [n][in_h - 2][in_w - 2][out_c]
  bool relu;
};

// The 'full' 3x3 convolution that gives a convolution's input gradient: dx[n][y][x][c] =
// sum over (ky, kx, j) of dy[n][y + ky - 2][x + kx - 2][j] * packed_w[(ky * 3 + kx) * k + j][c]
// over the taps inside dy (the others would multiply zeros), with packed_w the flipped
// kernel (row length c_pad, zero beyond c). dy is [n][h][w][k], dx [n][h + 2][w + 2][c].
struct ConvFull {
  int h, w, k, c, c_pad;
  const float* dy;
  const float* packed_w;
  float* dx;
};

// Gradient of a 3x3 convolution w.r.t. its weights, for images [n0, n1), written as
// packed_dw[(ky * 3 + kx) * in_c + c][k] (row length k_pad) and dbias[k].
struct ConvWeightGrad {
  int in_h, in_w, in_c, out_c, k_pad;
  const float* x;   // [n][in_h][in_w][in_c]
  const float* dy;  // [n][in_h - 2][in_w - 2][out_c]
};

// A Winograd F(2x2, 3x3) convolution (winograd_f2x2_3x3.h): x [n][in_h][in_w][c] read with
// a zero border of `pad`, y [n][out_h][out_w][k] (out = in + 2 pad - 2), cut into
// tiles_h x tiles_w tiles of 2x2 outputs per image (the last row and column may stick out).
// u is the transformed kernel [16][c][k_pad] (zero beyond k), bias [k_pad] or null.
// pool2x2 (out_h and out_w even): y is instead [n][out_h / 2][out_w / 2][k], each tile's
// 2x2 max-pool, the maximum taken in maxpool2x2_forward's order.
constexpr int kWinogradPlanePad = 16;
struct WinogradArgs {
  int in_h, in_w, c, c_pad, pad, out_h, out_w, k, k_pad, tiles_h, tiles_w;
  const float* x;
  const float* u;
  const float* bias;
  float* y;
  bool relu;
  bool pool2x2;
};

struct DenseArgs {
  int n, in, out;
};

struct KernelTable {
  const char* isa;
  int lanes;
  // Output rows [oy0, oy1), columns [ox0, ox1) of image `image` (single-threaded).
  void (*conv3x3_window)(const ConvWindow& a, int image, int oy0, int oy1, int ox0, int ox1);
  // Row y of image `image` of a ConvFull (single-threaded).
  void (*conv3x3_full_row)(const ConvFull& a, int image, int y);
  // dx for a convolution with a single input channel: dx[n][y][x] =
  // sum over taps and k of dy_padded[n][y + ky][x + kx][k] * flipped_w[ky * 3 + kx][k],
  // where dy_padded has a 2-pixel zero border ([h + 2][w + 2][k], h x w the input size).
  void (*conv3x3_backward_data_1ch)(int h, int w, int k, const float* dy_padded, const float* flipped_w, float* dx,
                                    int image);
  // Partial weight gradient of images [n0, n1) for packed rows [r0, r0 + rows) and channel
  // chunk [k0, k0 + kcount), written (not added) to out[(r - r0) * k_pad + (k - k0)]...
  // see conv3x3_backward_weights_kernels.cpp for the tiling.
  void (*conv3x3_weight_grad_tile)(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int c_count, int k0,
                                   int k_count, float* out);
  // Tiles [tile0, tile0 + count) of a WinogradArgs, numbered image by image in raster
  // order; v and m are scratch of 16 * (count * c_pad + kWinogradPlanePad) and
  // 16 * (count * k_pad + kWinogradPlanePad) floats.
  void (*winograd_f2x2_block)(const WinogradArgs& a, int64_t tile0, int count, float* v, float* m);
  // y[n][o] = b[o] + sum_i x[n][i] w[o][i] (optionally ReLU) for samples [n0, n1), outputs [o0, o1).
  void (*dense_forward_block)(const DenseArgs& s, const float* x, const float* w, const float* b, float* y, bool relu,
                              int n0, int n1, int o0, int o1);
  // dx[n][i] = sum_o dy[n][o] w[o][i] for samples [n0, n1), inputs [i0, i1).
  void (*dense_backward_data_block)(const DenseArgs& s, const float* dy, const float* w, float* dx, int n0, int n1,
                                    int i0, int i1);
  // dw[o][i] = sum_n dy[n][o] x[n][i] for outputs [o0, o1), inputs [i0, i1).
  void (*dense_backward_weights_block)(const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int o1,
                                       int i0, int i1);
  // y[i] = x[i] * dropout_factor(key, i) for i in [begin, end).
  void (*dropout_block)(const DropoutKey& key, const float* x, float* y, int64_t begin, int64_t end);
  // Runs `iterations` rounds of independent fused multiply-adds; returns the flops done.
  double (*fma_peak)(int64_t iterations);
};

// The kernels this process uses: the widest instruction set the processor supports, or
// the one named by the environment variable TEMPERED_ISA (avx512, avx2, generic) when the
// processor supports it.
const KernelTable& active_kernels();
// All instruction sets compiled in and supported here (for tests and benchmarks).
const KernelTable* kernels_for(const char* isa);

}  // namespace cpu
}  // namespace tempered
