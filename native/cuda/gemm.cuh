// The project's own matrix-product kernel, shared by the convolutions (as implicit GEMMs:
// the im2col matrix is never stored, its elements are read on the fly) and the dense
// layers, plus the deterministic reductions that finish the weight and bias gradients.
//
//   C[m][n] = sum over r of A(m, r) * B(r, n)
//
// A "problem" type describes one product:
//   int M, N, R;           the sizes
//   int r_chunk;           the reduction is cut into chunks of r_chunk (blockIdx.z = chunk);
//                          one chunk (r_chunk >= R) for a plain product
//   static constexpr bool kALongR, kBLongN;  which index is contiguous in memory, so that
//                          the loads into shared memory are coalesced
//   __device__ float a(int m, int r) const;   called only with m < M, r < R
//   __device__ float b(int r, int n) const;   called only with r < R, n < N
//   __device__ void store(int chunk, int m, int n, float v) const;
//
// Each block computes a BM x BN tile of C with 256 threads (a 16 x 16 grid, each thread a
// (BM/16) x (BN/16) sub-tile), stepping through its chunk 16 values of r at a time through
// shared memory. Every output is a sum in increasing r with fmaf, the same on every run:
// no atomics anywhere. Split reductions (weight gradients, which sum over the whole batch)
// write one partial product per chunk; reduce_chunks adds them in chunk order.
#pragma once

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

constexpr int kGemmThreads = 256;
constexpr int kGemmK = 16;

template <int BM, int BN, class P>
__global__ void __launch_bounds__(kGemmThreads) gemm_kernel(P p) {
  static_assert(BM % 16 == 0 && BN % 16 == 0, "tile sizes are multiples of 16");
  constexpr int TM = BM / 16, TN = BN / 16;
  __shared__ float As[kGemmK][BM + 1];
  __shared__ float Bs[kGemmK][BN + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int chunk = blockIdx.z;
  const int r_begin = chunk * p.r_chunk;
  const int r_end = imin(p.R, r_begin + p.r_chunk);
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  for (int r0 = r_begin; r0 < r_end; r0 += kGemmK) {
    for (int idx = tid; idx < BM * kGemmK; idx += kGemmThreads) {
      int mm, rr;
      if (P::kALongR) {
        rr = idx % kGemmK;
        mm = idx / kGemmK;
      } else {
        mm = idx % BM;
        rr = idx / BM;
      }
      const int m = m0 + mm, r = r0 + rr;
      As[rr][mm] = (m < p.M && r < r_end) ? p.a(m, r) : 0.0f;
    }
    for (int idx = tid; idx < BN * kGemmK; idx += kGemmThreads) {
      int nn, rr;
      if (P::kBLongN) {
        nn = idx % BN;
        rr = idx / BN;
      } else {
        rr = idx % kGemmK;
        nn = idx / kGemmK;
      }
      const int n = n0 + nn, r = r0 + rr;
      Bs[rr][nn] = (n < p.N && r < r_end) ? p.b(r, n) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kGemmK; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[k][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < p.M && n < p.N) p.store(chunk, m, n, acc[i][j]);
    }
}

// Chunks of a split reduction over R: at least min_chunk values each (a multiple of 16),
// at most max_chunks chunks. Depends on the sizes only, so results are reproducible.
inline int split_chunk(int R, int min_chunk, int max_chunks) {
  int chunk = (R + max_chunks - 1) / max_chunks;
  if (chunk < min_chunk) chunk = min_chunk;
  return (chunk + kGemmK - 1) / kGemmK * kGemmK;
}
inline int chunk_count(int R, int r_chunk) { return R <= 0 ? 1 : (R + r_chunk - 1) / r_chunk; }

template <int BM, int BN, class P>
Status run_gemm(CudaBackend& b, const char* op, const P& p) {
  const dim3 grid(static_cast<unsigned>((p.M + BM - 1) / BM), static_cast<unsigned>((p.N + BN - 1) / BN),
                  static_cast<unsigned>(chunk_count(p.R, p.r_chunk)));
  return b.launch(op, gemm_kernel<BM, BN, P>, grid, dim3(kGemmThreads), p);
}

// out(j, sum over chunks c in order of partials[c * count + j]) for j < count.
template <class Out>
__global__ void reduce_chunks_kernel(const float* partials, int chunks, size_t count, Out out) {
  for (size_t j = grid_index(); j < count; j += grid_stride()) {
    float s = partials[j];
    for (int c = 1; c < chunks; ++c) s += partials[static_cast<size_t>(c) * count + j];
    out(j, s);
  }
}

// out[col] = sum over rows of a[row][col] for a [rows][cols] matrix (the bias gradients):
// each fixed chunk of rows is summed in row order, then the chunks in chunk order
// (column_sums.cu).
Status column_sums(CudaBackend& b, const char* op, const float* a, int rows, int cols, float* out);

// y[row][col] = ReLU?(y[row][col] + bias[col]): the epilogue after cuDNN / cuBLAS (bias.cu).
Status add_bias(CudaBackend& b, const char* op, float* y, size_t rows, int cols, const float* bias, bool relu);

}  // namespace cuda
}  // namespace tempered
