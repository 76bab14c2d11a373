// conv3x3_backward_weights: dW[k][c][tap] and db[k], summed over the batch and the pixels.
//
// An implicit GEMM (gemm.cuh) with rows m = tap * C + c, columns n = k, and the reduction
// over the output pixels r = (image, oy, ox): A(m, r) = x at the pixel shifted by the tap,
// B(r, n) = dy[r][k]. The pixels are cut into fixed chunks (depending on the shape only);
// each chunk's partial product goes to scratch and reduce_chunks adds them in chunk order,
// so the result is the same bits on every run (no atomics). The bias is column_sums of dy.
// With cuDNN, cuDNN's deterministic backward-filter algorithm.
#include "conv_common.cuh"
#include "conv_generic.cuh"
#include "cudnn_conv.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

constexpr int kMinPixelsPerChunk = 2048;
constexpr int kMaxChunks = 128;

struct ConvBackwardWeightsProblem {
  static constexpr bool kALongR = false;  // consecutive m: consecutive channels c of one pixel
  static constexpr bool kBLongN = true;   // consecutive n: consecutive channels k of dy
  int M, N, R, r_chunk;
  int in_h, in_w, in_c, out_h, out_w;
  const float* x;
  const float* dy;
  float* partials;  // [chunk][M][N], or null: one chunk, written straight to dweight
  float* dweight;   // [K][C][3][3]

  __device__ float a(int m, int r) const {
    const int tap = m / in_c, c = m - tap * in_c;
    const int ky = tap / 3, kx = tap - ky * 3;
    const int per_image = out_h * out_w;
    const int image = r / per_image, rest = r - image * per_image;
    const int oy = rest / out_w, ox = rest - oy * out_w;
    return x[((static_cast<size_t>(image) * in_h + oy + ky) * in_w + ox + kx) * in_c + c];
  }
  __device__ float b(int r, int n) const { return dy[static_cast<size_t>(r) * N + n]; }
  __device__ void store(int chunk, int m, int n, float v) const {
    if (partials != nullptr) {
      partials[(static_cast<size_t>(chunk) * M + m) * N + n] = v;
    } else {
      const int tap = m / in_c, c = m - tap * in_c;
      dweight[(static_cast<size_t>(n) * in_c + c) * 9 + tap] = v;
    }
  }
};

// j = m * K + k with m = tap * C + c  ->  dweight[k][c][tap].
struct StoreConvWeight {
  int in_c, out_c;
  float* dweight;
  __device__ void operator()(size_t j, float v) const {
    const int k = static_cast<int>(j % out_c);
    const int m = static_cast<int>(j / out_c);
    const int tap = m / in_c, c = m - tap * in_c;
    dweight[(static_cast<size_t>(k) * in_c + c) * 9 + tap] = v;
  }
};

}  // namespace

Status CudaBackend::conv3x3_backward_weights(const Conv3x3Shape& s, const float* x, const float* dy, float* dweight,
                                             float* dbias) {
  const char* op = "conv3x3_backward_weights";
  TEMPERED_TRY(healthy(op));
  if (s.out_c <= 0 || s.in_c <= 0) return Status::Ok();
  if (s.k != 3) return conv_generic_backward_weights(*this, op, s, x, dy, dweight, dbias);
  const int pixels = s.n * s.out_h() * s.out_w();
  if (pixels > 0) {
    bool done = false;
    TEMPERED_TRY(through_library(kLibConvBackwardWeights, op, &done,
                                 [&](bool* d) { return cudnn_conv3x3_backward_weights(*this, s, x, dy, dweight, d); }));
    if (done) return column_sums(*this, op, dy, pixels, s.out_c, dbias);
  }
  const int M = 9 * s.in_c, N = s.out_c;
  const int r_chunk = split_chunk(pixels, kMinPixelsPerChunk, kMaxChunks);
  const int chunks = chunk_count(pixels, r_chunk);
  float* partials = nullptr;
  if (chunks > 1) {
    void* p = nullptr;
    TEMPERED_TRY(scratch(kScratchPartials, sizeof(float) * static_cast<size_t>(chunks) * M * N, &p, op));
    partials = static_cast<float*>(p);
  }
  ConvBackwardWeightsProblem p{M,         N,         pixels, r_chunk, s.in_h,   s.in_w, s.in_c,
                               s.out_h(), s.out_w(), x,      dy,      partials, dweight};
  if (N <= 32)
    TEMPERED_TRY((run_gemm<64, 32>(*this, op, p)));
  else
    TEMPERED_TRY((run_gemm<64, 64>(*this, op, p)));
  if (chunks > 1) {
    const size_t count = static_cast<size_t>(M) * N;
    TEMPERED_TRY(launch(op, reduce_chunks_kernel<StoreConvWeight>, dim3(blocks_for(count)), dim3(kThreads),
                        static_cast<const float*>(partials), chunks, count, StoreConvWeight{s.in_c, s.out_c, dweight}));
  }
  return column_sums(*this, op, dy, pixels, s.out_c, dbias);
}

}  // namespace cuda
}  // namespace tempered
