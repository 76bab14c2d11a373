// conv3x3_backward_data: dx[image][iy][ix][c] = sum over k and taps (ky, kx) of
//   dy[image][iy - ky][ix - kx][k] * w[k][c][ky][kx]   (terms outside dy are zero),
// the 'full' convolution with the flipped kernel. An implicit GEMM (gemm.cuh): rows are input
// pixels, columns input channels, r = tap * K + k; B is the weights packed as
// packed[(tap * K + k) * C + c]. A single input channel (conv1, only needed for input
// gradients) uses a direct kernel. With cuDNN, cuDNN's backward-data convolution.
#include "conv_common.cuh"
#include "conv_generic.cuh"
#include "cudnn_conv.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

struct ConvBackwardDataProblem {
  static constexpr bool kALongR = true;  // consecutive r: consecutive channels k of one dy pixel
  static constexpr bool kBLongN = true;
  int M, N, R, r_chunk;
  int in_h, in_w, out_c, out_h, out_w;
  const float* dy;
  const float* packed;
  float* dx;

  __device__ float a(int m, int r) const {
    const int per_image = in_h * in_w;
    const int image = m / per_image, rest = m - image * per_image;
    const int iy = rest / in_w, ix = rest - iy * in_w;
    const int tap = r / out_c, k = r - tap * out_c;
    const int ky = tap / 3, kx = tap - ky * 3;
    const int oy = iy - ky, ox = ix - kx;
    if (oy < 0 || oy >= out_h || ox < 0 || ox >= out_w) return 0.0f;
    return dy[((static_cast<size_t>(image) * out_h + oy) * out_w + ox) * out_c + k];
  }
  __device__ float b(int r, int n) const { return packed[static_cast<size_t>(r) * N + n]; }
  __device__ void store(int, int m, int n, float v) const { dx[static_cast<size_t>(m) * N + n] = v; }
};

// One input channel: one thread per input pixel; taps in order, channels in order.
__global__ void conv1ch_backward_data_kernel(int n, int in_h, int in_w, int out_c, const float* dy, const float* weight,
                                             float* dx) {
  const int out_h = in_h - 2, out_w = in_w - 2;
  const size_t total = static_cast<size_t>(n) * in_h * in_w;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int ix = static_cast<int>(i % in_w);
    const size_t rest = i / in_w;
    const int iy = static_cast<int>(rest % in_h);
    const size_t image = rest / in_h;
    float acc = 0.0f;
    for (int tap = 0; tap < 9; ++tap) {
      const int oy = iy - tap / 3, ox = ix - tap % 3;
      if (oy < 0 || oy >= out_h || ox < 0 || ox >= out_w) continue;
      const float* g = dy + ((image * out_h + oy) * out_w + ox) * out_c;
      for (int k = 0; k < out_c; ++k) acc = fmaf(g[k], weight[static_cast<size_t>(k) * 9 + tap], acc);
    }
    dx[i] = acc;
  }
}

}  // namespace

Status CudaBackend::conv3x3_backward_data(const Conv3x3Shape& s, const float* dy, const float* weight, float* dx) {
  const char* op = "conv3x3_backward_data";
  TEMPERED_TRY(healthy(op));
  const size_t total = static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c;
  if (total == 0) return Status::Ok();
  if (s.k != 3) return conv_generic_backward_data(*this, op, s, dy, weight, dx);
  bool done = false;
  TEMPERED_TRY(through_library(kLibConvBackwardData, op, &done,
                               [&](bool* d) { return cudnn_conv3x3_backward_data(*this, s, dy, weight, dx, d); }));
  if (done) return Status::Ok();
  if (s.in_c == 1)
    return launch(op, conv1ch_backward_data_kernel, dim3(blocks_for(total)), dim3(kThreads), s.n, s.in_h, s.in_w,
                  s.out_c, dy, weight, dx);

  const int R = 9 * s.out_c;
  void* packed = nullptr;
  TEMPERED_TRY(scratch(kScratchWeights, sizeof(float) * static_cast<size_t>(R) * s.in_c, &packed, op));
  TEMPERED_TRY(pack_conv_weights(*this, op, weight, s.out_c, s.in_c, PackOrder::kTapKC, static_cast<float*>(packed)));
  ConvBackwardDataProblem p{s.n * s.in_h * s.in_w,
                            s.in_c,
                            R,
                            R > 0 ? R : 1,
                            s.in_h,
                            s.in_w,
                            s.out_c,
                            s.out_h(),
                            s.out_w(),
                            dy,
                            static_cast<const float*>(packed),
                            dx};
  if (s.in_c <= 32) return run_gemm<128, 32>(*this, op, p);
  return run_gemm<64, 64>(*this, op, p);
}

}  // namespace cuda
}  // namespace tempered
