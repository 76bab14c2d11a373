// softmax_xent: per-sample training loss at temperature T and the gradient of the batch
// mean (formula in tempered/softmax_xent.h).
#include "tempered/softmax_xent.h"

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::softmax_xent(const SoftmaxXentArgs& a, const float* logits, float* loss, float* dlogits) {
  const float grad_scale = a.scale / static_cast<float>(a.n);
  for (int i = 0; i < a.n; ++i) {
    const float* z = logits + static_cast<size_t>(i) * a.classes;
    const float* soft = a.soft_targets ? a.soft_targets + static_cast<size_t>(i) * a.classes : nullptr;
    const int label = a.labels ? a.labels[i] : 0;
    float* dz = dlogits ? dlogits + static_cast<size_t>(i) * a.classes : nullptr;
    loss[i] = softmax_xent_sample(z, a.classes, a.temperature, label, soft, grad_scale, dz);
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
