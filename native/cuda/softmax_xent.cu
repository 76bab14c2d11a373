// softmax_xent: per-sample training loss at temperature T and the gradient of the batch
// mean, one thread per sample, with the CPU's formula (tempered/softmax_xent.h).
#include "cuda_backend.h"
#include "tempered/softmax_xent.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void softmax_xent_kernel(int n, int classes, float temperature, float grad_scale, const int32_t* labels,
                                    const float* soft, const float* logits, float* loss, float* dlogits) {
  for (size_t i = grid_index(); i < static_cast<size_t>(n); i += grid_stride()) {
    const float* z = logits + i * classes;
    const float* t = soft != nullptr ? soft + i * classes : nullptr;
    const int label = labels != nullptr ? labels[i] : 0;
    float* dz = dlogits != nullptr ? dlogits + i * classes : nullptr;
    loss[i] = softmax_xent_sample(z, classes, temperature, label, t, grad_scale, dz);
  }
}

}  // namespace

Status CudaBackend::softmax_xent(const SoftmaxXentArgs& a, const float* logits, float* loss, float* dlogits) {
  TEMPERED_TRY(healthy("softmax_xent"));
  if (a.n <= 0) return Status::Ok();
  const float grad_scale = a.scale / static_cast<float>(a.n);  // as the CPU backend
  return launch("softmax_xent", softmax_xent_kernel, dim3(blocks_for(a.n, 128)), dim3(128), a.n, a.classes,
                a.temperature, grad_scale, a.labels, a.soft_targets, logits, loss, dlogits);
}

}  // namespace cuda
}  // namespace tempered
