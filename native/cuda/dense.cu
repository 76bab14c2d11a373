// dense_forward / dense_backward_data / dense_backward_weights on row-major [n][in] inputs
// and PyTorch's [out][in] weights, with the tiled kernel of gemm.cuh (or cuBLAS's sgemm,
// cublas_dense.cu). The weight gradient sums over the batch in fixed chunks of samples
// added in order; the bias gradient is column_sums of dy: both reproducible bit for bit.
#include "cublas_dense.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

constexpr int kMinSamplesPerChunk = 256;
constexpr int kMaxChunks = 64;

// y[m][n] = ReLU?(sum_r x[m][r] w[n][r] + b[n]).
struct DenseForwardProblem {
  static constexpr bool kALongR = true;
  static constexpr bool kBLongN = false;  // w[n][r]: consecutive r
  int M, N, R, r_chunk;
  const float* x;
  const float* w;
  const float* bias;
  float* y;
  bool relu;
  __device__ float a(int m, int r) const { return x[static_cast<size_t>(m) * R + r]; }
  __device__ float b(int r, int n) const { return w[static_cast<size_t>(n) * R + r]; }
  __device__ void store(int, int m, int n, float v) const {
    const float out = v + bias[n];
    y[static_cast<size_t>(m) * N + n] = relu ? (out > 0.0f ? out : 0.0f) : out;
  }
};

// dx[m][n] = sum_r dy[m][r] w[r][n]   (r: outputs, n: inputs).
struct DenseBackwardDataProblem {
  static constexpr bool kALongR = true;
  static constexpr bool kBLongN = true;
  int M, N, R, r_chunk;
  const float* dy;
  const float* w;
  float* dx;
  __device__ float a(int m, int r) const { return dy[static_cast<size_t>(m) * R + r]; }
  __device__ float b(int r, int n) const { return w[static_cast<size_t>(r) * N + n]; }
  __device__ void store(int, int m, int n, float v) const { dx[static_cast<size_t>(m) * N + n] = v; }
};

// dw[m][n] = sum_r dy[r][m] x[r][n]   (m: outputs, n: inputs, r: samples).
struct DenseBackwardWeightsProblem {
  static constexpr bool kALongR = false;  // dy[r][m]: consecutive m
  static constexpr bool kBLongN = true;
  int M, N, R, r_chunk;
  const float* dy;
  const float* x;
  float* partials;  // [chunk][M][N], or null: one chunk, written straight to dw
  float* dw;
  __device__ float a(int m, int r) const { return dy[static_cast<size_t>(r) * M + m]; }
  __device__ float b(int r, int n) const { return x[static_cast<size_t>(r) * N + n]; }
  __device__ void store(int chunk, int m, int n, float v) const {
    if (partials != nullptr)
      partials[(static_cast<size_t>(chunk) * M + m) * N + n] = v;
    else
      dw[static_cast<size_t>(m) * N + n] = v;
  }
};

struct StoreFlat {
  float* out;
  __device__ void operator()(size_t j, float v) const { out[j] = v; }
};

}  // namespace

Status CudaBackend::dense_forward(const DenseShape& s, const float* x, const float* weight, const float* bias, float* y,
                                  bool relu) {
  const char* op = "dense_forward";
  TEMPERED_TRY(healthy(op));
  if (s.n <= 0 || s.out <= 0) return Status::Ok();
  bool done = false;
  TEMPERED_TRY(through_library(kLibDenseForward, op, &done, [&](bool* d) {
    *d = true;
    return cublas_dense_forward(*this, s, x, weight, bias, y, relu);
  }));
  if (done) return Status::Ok();
  DenseForwardProblem p{s.n, s.out, s.in, s.in > 0 ? s.in : 1, x, weight, bias, y, relu};
  if (s.out <= 32) return run_gemm<64, 32>(*this, op, p);
  return run_gemm<64, 64>(*this, op, p);
}

Status CudaBackend::dense_backward_data(const DenseShape& s, const float* dy, const float* weight, float* dx) {
  const char* op = "dense_backward_data";
  TEMPERED_TRY(healthy(op));
  if (s.n <= 0 || s.in <= 0) return Status::Ok();
  bool done = false;
  TEMPERED_TRY(through_library(kLibDenseBackwardData, op, &done, [&](bool* d) {
    *d = true;
    return cublas_dense_backward_data(*this, s, dy, weight, dx);
  }));
  if (done) return Status::Ok();
  DenseBackwardDataProblem p{s.n, s.in, s.out, s.out > 0 ? s.out : 1, dy, weight, dx};
  return run_gemm<64, 64>(*this, op, p);
}

Status CudaBackend::dense_backward_weights(const DenseShape& s, const float* x, const float* dy, float* dweight,
                                           float* dbias) {
  const char* op = "dense_backward_weights";
  TEMPERED_TRY(healthy(op));
  if (s.out <= 0) return Status::Ok();
  if (s.n > 0 && s.in > 0) {
    bool done = false;
    TEMPERED_TRY(through_library(kLibDenseBackwardWeights, op, &done, [&](bool* d) {
      *d = true;
      return cublas_dense_backward_weights(*this, s, x, dy, dweight);
    }));
    if (done) return column_sums(*this, op, dy, s.n, s.out, dbias);
  }
  if (s.in > 0) {
    const int r_chunk = split_chunk(s.n, kMinSamplesPerChunk, kMaxChunks);
    const int chunks = chunk_count(s.n, r_chunk);
    float* partials = nullptr;
    if (chunks > 1) {
      void* p = nullptr;
      TEMPERED_TRY(scratch(kScratchPartials, sizeof(float) * static_cast<size_t>(chunks) * s.out * s.in, &p, op));
      partials = static_cast<float*>(p);
    }
    DenseBackwardWeightsProblem p{s.out, s.in, s.n, r_chunk, dy, x, partials, dweight};
    if (s.in <= 32)
      TEMPERED_TRY((run_gemm<64, 32>(*this, op, p)));
    else
      TEMPERED_TRY((run_gemm<64, 64>(*this, op, p)));
    if (chunks > 1) {
      const size_t count = static_cast<size_t>(s.out) * s.in;
      TEMPERED_TRY(launch(op, reduce_chunks_kernel<StoreFlat>, dim3(blocks_for(count)), dim3(kThreads),
                          static_cast<const float*>(partials), chunks, count, StoreFlat{dweight}));
    }
  }
  return column_sums(*this, op, dy, s.n, s.out, dbias);
}

}  // namespace cuda
}  // namespace tempered
