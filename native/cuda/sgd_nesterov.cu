// sgd_nesterov: Lasagne's nesterov_momentum with the optional L2 penalty folded into the
// gradient, element-wise with the CPU's operations in the CPU's order (the plugin is
// compiled with --fmad=false, so nothing is contracted into an FMA behind our back).
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void sgd_nesterov_kernel(float lr, float mu, float l2x2, size_t count, float* param, const float* grad,
                                    float* velocity) {
  for (size_t i = grid_index(); i < count; i += grid_stride()) {
    const float g = grad[i] + l2x2 * param[i];
    const float v = mu * velocity[i] - lr * g;
    velocity[i] = v;
    param[i] = param[i] + mu * v - lr * g;
  }
}

}  // namespace

Status CudaBackend::sgd_nesterov(const SgdArgs& a, size_t count, float* param, const float* grad, float* velocity) {
  TEMPERED_TRY(healthy("sgd_nesterov"));
  if (count == 0) return Status::Ok();
  return launch("sgd_nesterov", sgd_nesterov_kernel, dim3(blocks_for(count)), dim3(kThreads), a.learning_rate,
                a.momentum, 2.0f * a.l2, count, param, grad, velocity);
}

}  // namespace cuda
}  // namespace tempered
