// relu_forward: y = max(x, 0), for a ReLU that is not fused into the layer before it.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void relu_forward_kernel(const float* x, float* y, size_t count) {
  for (size_t i = grid_index(); i < count; i += grid_stride()) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

}  // namespace

Status CudaBackend::relu_forward(const float* x, float* y, size_t count) {
  TEMPERED_TRY(healthy("relu_forward"));
  if (count == 0) return Status::Ok();
  return launch("relu_forward", relu_forward_kernel, dim3(blocks_for(count)), dim3(kThreads), x, y, count);
}

}  // namespace cuda
}  // namespace tempered
