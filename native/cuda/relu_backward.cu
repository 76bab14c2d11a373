// relu_backward: dy *= (y > 0), computed from the ReLU's output, in place.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void relu_backward_kernel(float* dy, const float* y, size_t count) {
  for (size_t i = grid_index(); i < count; i += grid_stride()) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

Status CudaBackend::relu_backward(float* dy, const float* y, size_t count) {
  TEMPERED_TRY(healthy("relu_backward"));
  if (count == 0) return Status::Ok();
  return launch("relu_backward", relu_backward_kernel, dim3(blocks_for(count)), dim3(kThreads), dy, y, count);
}

}  // namespace cuda
}  // namespace tempered
