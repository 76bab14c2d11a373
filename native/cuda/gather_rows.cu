// gather_rows: assembles a batch from a resident data set by row index.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

template <typename T>
__global__ void gather_kernel(const T* src, size_t row_len, const int32_t* indices, int n, T* dst) {
  const size_t total = static_cast<size_t>(n) * row_len;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t row = i / row_len, k = i - row * row_len;
    dst[i] = src[static_cast<size_t>(indices[row]) * row_len + k];
  }
}

}  // namespace

Status CudaBackend::gather_rows(const void* src, size_t row_bytes, const int32_t* indices, int n, void* dst) {
  TEMPERED_TRY(healthy("gather_rows"));
  if (n <= 0 || row_bytes == 0) return Status::Ok();
  const bool words =
      row_bytes % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 4 == 0 && reinterpret_cast<uintptr_t>(dst) % 4 == 0;
  const size_t total = static_cast<size_t>(n) * (words ? row_bytes / 4 : row_bytes);
  if (words)
    return launch("gather_rows", gather_kernel<uint32_t>, dim3(blocks_for(total)), dim3(kThreads),
                  static_cast<const uint32_t*>(src), row_bytes / 4, indices, n, static_cast<uint32_t*>(dst));
  return launch("gather_rows", gather_kernel<uint8_t>, dim3(blocks_for(total)), dim3(kThreads),
                static_cast<const uint8_t*>(src), row_bytes, indices, n, static_cast<uint8_t*>(dst));
}

}  // namespace cuda
}  // namespace tempered
