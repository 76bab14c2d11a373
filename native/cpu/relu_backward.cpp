// relu_backward: dy *= (y > 0), computed from the ReLU's output.
#include <algorithm>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::relu_backward(float* dy, const float* y, size_t count) {
  constexpr size_t kBlock = 1 << 15;
  pool().parallel_for(static_cast<int64_t>((count + kBlock - 1) / kBlock), [&](int64_t task) {
    size_t begin = static_cast<size_t>(task) * kBlock, end = std::min(count, begin + kBlock);
    for (size_t i = begin; i < end; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
