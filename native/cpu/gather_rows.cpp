// gather_rows: assembles a batch from a resident data set by row index.
#include <cstring>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::gather_rows(const void* src, size_t row_bytes, const int32_t* indices, int n, void* dst) {
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  pool().parallel_for((n + 15) / 16, [&](int64_t task) {
    int end = std::min<int>(n, static_cast<int>(task + 1) * 16);
    for (int i = static_cast<int>(task) * 16; i < end; ++i)
      std::memcpy(d + i * row_bytes, s + static_cast<size_t>(indices[i]) * row_bytes, row_bytes);
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
