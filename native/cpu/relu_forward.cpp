// relu_forward: y = max(x, 0), for a ReLU that is not fused into the layer before it.
#include <algorithm>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::relu_forward(const float* x, float* y, size_t count) {
  constexpr size_t kBlock = 1 << 15;
  pool().parallel_for(static_cast<int64_t>((count + kBlock - 1) / kBlock), [&](int64_t task) {
    size_t begin = static_cast<size_t>(task) * kBlock, end = std::min(count, begin + kBlock);
    for (size_t i = begin; i < end; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
