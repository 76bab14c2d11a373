// sgd_nesterov: Lasagne's nesterov_momentum, with the optional L2 penalty folded into
// the gradient.
#include <algorithm>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::sgd_nesterov(const SgdArgs& a, size_t count, float* param, const float* grad, float* velocity) {
  const float lr = a.learning_rate, mu = a.momentum, l2x2 = 2.0f * a.l2;
  constexpr size_t kBlock = 1 << 14;
  pool().parallel_for(static_cast<int64_t>((count + kBlock - 1) / kBlock), [&](int64_t task) {
    size_t begin = static_cast<size_t>(task) * kBlock, end = std::min(count, begin + kBlock);
    for (size_t i = begin; i < end; ++i) {
      float g = grad[i] + l2x2 * param[i];
      float v = mu * velocity[i] - lr * g;
      velocity[i] = v;
      param[i] = param[i] + mu * v - lr * g;
    }
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
