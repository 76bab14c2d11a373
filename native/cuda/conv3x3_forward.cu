// conv3x3_forward: y = ReLU?(conv(x, w) + b), NHWC, 'valid', stride 1.
//
// An implicit GEMM (gemm.cuh): rows m are output pixels (image, oy, ox), columns n output
// channels, the reduction index r = tap * C + c with tap = ky * 3 + kx; A(m, r) is read
// straight from x, B(r, n) from the weights packed as packed[(tap * C + c) * K + k]. A single
// input channel (conv1) has too short a reduction for tiles and uses a direct kernel.
// With cuDNN (cudnn_conv.cu) the convolution itself is cuDNN's.
#include "conv_common.cuh"
#include "conv_generic.cuh"
#include "cudnn_conv.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

struct ConvForwardProblem {
  static constexpr bool kALongR = true;  // consecutive r: consecutive channels of one pixel
  static constexpr bool kBLongN = true;
  int M, N, R, r_chunk;
  int in_h, in_w, in_c, out_h, out_w;
  const float* x;
  const float* packed;
  const float* bias;
  float* y;
  bool relu;

  __device__ float a(int m, int r) const {
    const int per_image = out_h * out_w;
    const int image = m / per_image, rest = m - image * per_image;
    const int oy = rest / out_w, ox = rest - oy * out_w;
    const int tap = r / in_c, c = r - tap * in_c;
    const int ky = tap / 3, kx = tap - ky * 3;
    return x[((static_cast<size_t>(image) * in_h + oy + ky) * in_w + ox + kx) * in_c + c];
  }
  __device__ float b(int r, int n) const { return packed[static_cast<size_t>(r) * N + n]; }
  __device__ void store(int, int m, int n, float v) const {
    const float out = v + bias[n];
    y[static_cast<size_t>(m) * N + n] = relu ? (out > 0.0f ? out : 0.0f) : out;
  }
};

// One input channel: one thread per output element, the 9 taps in order.
__global__ void conv1ch_forward_kernel(int n, int in_h, int in_w, int out_c, const float* x, const float* weight,
                                       const float* bias, float* y, bool relu) {
  const int out_h = in_h - 2, out_w = in_w - 2;
  const size_t total = static_cast<size_t>(n) * out_h * out_w * out_c;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int k = static_cast<int>(i % out_c);
    size_t rest = i / out_c;
    const int ox = static_cast<int>(rest % out_w);
    rest /= out_w;
    const int oy = static_cast<int>(rest % out_h);
    const size_t image = rest / out_h;
    const float* xi = x + (image * in_h + oy) * in_w + ox;
    const float* wk = weight + static_cast<size_t>(k) * 9;
    float acc = 0.0f;
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) acc = fmaf(xi[ky * in_w + kx], wk[ky * 3 + kx], acc);
    const float out = acc + bias[k];
    y[i] = relu ? (out > 0.0f ? out : 0.0f) : out;
  }
}

}  // namespace

Status CudaBackend::conv3x3_forward(const Conv3x3Shape& s, const float* x, const float* weight, const float* bias,
                                    float* y, bool relu) {
  const char* op = "conv3x3_forward";
  TEMPERED_TRY(healthy(op));
  const int out_h = s.out_h(), out_w = s.out_w();
  const size_t total = static_cast<size_t>(s.n) * out_h * out_w * s.out_c;
  if (total == 0) return Status::Ok();
  if (s.k != 3) return conv_generic_forward(*this, op, s, x, weight, bias, y, relu);
  bool done = false;
  TEMPERED_TRY(through_library(kLibConvForward, op, &done,
                               [&](bool* d) { return cudnn_conv3x3_forward(*this, s, x, weight, bias, y, relu, d); }));
  if (done) return Status::Ok();
  if (s.in_c == 1)
    return launch(op, conv1ch_forward_kernel, dim3(blocks_for(total)), dim3(kThreads), s.n, s.in_h, s.in_w, s.out_c, x,
                  weight, bias, y, relu);

  const int R = 9 * s.in_c;
  void* packed = nullptr;
  TEMPERED_TRY(scratch(kScratchWeights, sizeof(float) * static_cast<size_t>(R) * s.out_c, &packed, op));
  TEMPERED_TRY(pack_conv_weights(*this, op, weight, s.out_c, s.in_c, PackOrder::kTapCK, static_cast<float*>(packed)));
  ConvForwardProblem p{s.n * out_h * out_w,
                       s.out_c,
                       R,
                       R > 0 ? R : 1,
                       s.in_h,
                       s.in_w,
                       s.in_c,
                       out_h,
                       out_w,
                       x,
                       static_cast<const float*>(packed),
                       bias,
                       y,
                       relu};
  if (s.out_c <= 32) return run_gemm<128, 32>(*this, op, p);
  return run_gemm<64, 64>(*this, op, p);
}

}  // namespace cuda
}  // namespace tempered
