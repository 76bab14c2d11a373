// column_sums: the bias gradients (sums over the batch, and over the pixels of a
// convolution), deterministic: fixed chunks of rows summed in order, then the chunks in order.
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

__global__ void column_sums_partial_kernel(const float* a, int rows, int cols, int rows_per_chunk, float* partial) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  const int chunk = blockIdx.y;
  if (col >= cols) return;
  const int r0 = chunk * rows_per_chunk, r1 = imin(rows, r0 + rows_per_chunk);
  float s = 0.0f;
  for (int r = r0; r < r1; ++r) s += a[static_cast<size_t>(r) * cols + col];
  partial[static_cast<size_t>(chunk) * cols + col] = s;
}

__global__ void column_sums_final_kernel(const float* partial, int chunks, int cols, float* out) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= cols) return;
  float s = partial[col];
  for (int c = 1; c < chunks; ++c) s += partial[static_cast<size_t>(c) * cols + col];
  out[col] = s;
}

}  // namespace

Status column_sums(CudaBackend& b, const char* op, const float* a, int rows, int cols, float* out) {
  if (cols <= 0) return Status::Ok();
  int rows_per_chunk = (rows + 4095) / 4096;
  if (rows_per_chunk < 256) rows_per_chunk = 256;
  const int chunks = rows <= 0 ? 1 : (rows + rows_per_chunk - 1) / rows_per_chunk;
  void* partial = nullptr;
  TEMPERED_TRY(b.scratch(kScratchBiasPartials, sizeof(float) * static_cast<size_t>(chunks) * cols, &partial, op));
  const int threads = imin(256, (cols + 31) / 32 * 32);
  const unsigned col_blocks = static_cast<unsigned>((cols + threads - 1) / threads);
  TEMPERED_TRY(b.launch(op, column_sums_partial_kernel, dim3(col_blocks, static_cast<unsigned>(chunks)), dim3(threads),
                        a, rows, cols, rows_per_chunk, static_cast<float*>(partial)));
  return b.launch(op, column_sums_final_kernel, dim3(col_blocks), dim3(threads), static_cast<const float*>(partial),
                  chunks, cols, out);
}

}  // namespace cuda
}  // namespace tempered
