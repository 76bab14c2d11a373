// Network::logit_vjp: one forward pass per chunk, then one backward pass per requested
// linear function of the logits. JSMA needs two of them per image (the target's row of the
// Jacobian and the sum of the other rows); backpropagation is linear in its seed, so two
// backward passes give exactly what summing ten Jacobian rows would.
#include <algorithm>
#include <cstring>

#include "network.h"

namespace tempered {

Status Network::logit_vjp(const float* host_images, int n, int rows, const LogitSeeds& seeds, double* dx,
                          float* logits) {
  if (rows < 1) return Status::InvalidArgument("logit_vjp needs at least one row");
  const int kPixels = input_size(), kClasses = plan_.classes, kVjpChunk = eval_chunk();
  std::vector<float> z(static_cast<size_t>(kVjpChunk) * kClasses),
      seed(static_cast<size_t>(rows) * kVjpChunk * kClasses), host_dx(static_cast<size_t>(kVjpChunk) * kPixels);
  DeviceBuffer<float> dx_dev;
  for (int start = 0; start < n; start += kVjpChunk) {
    const int m = std::min(kVjpChunk, n - start);
    TEMPERED_TRY(ensure_capacity(m));
    TEMPERED_TRY(dx_dev.reserve(b_, static_cast<size_t>(m) * kPixels));
    TEMPERED_TRY(b_->upload(x_.get(), host_images + static_cast<size_t>(start) * kPixels, sizeof(float) * m * kPixels));
    TEMPERED_TRY(forward(x_.get(), m, nullptr, 0));
    TEMPERED_TRY(b_->download(z.data(), this->logits(), sizeof(float) * m * kClasses));
    if (logits != nullptr)
      std::memcpy(logits + static_cast<size_t>(start) * kClasses, z.data(), sizeof(float) * m * kClasses);
    seeds(start, m, z.data(), seed.data());
    for (int r = 0; r < rows; ++r) {
      TEMPERED_TRY(b_->upload(dz_.get(), &seed[static_cast<size_t>(r) * m * kClasses], sizeof(float) * m * kClasses));
      TEMPERED_TRY(backward(x_.get(), m, nullptr, 0, false, dx_dev.get()));
      TEMPERED_TRY(b_->download(host_dx.data(), dx_dev.get(), sizeof(float) * m * kPixels));
      for (int i = 0; i < m; ++i)
        for (int p = 0; p < kPixels; ++p)
          dx[(static_cast<size_t>(start + i) * rows + r) * kPixels + p] = host_dx[static_cast<size_t>(i) * kPixels + p];
    }
  }
  return Status::Ok();
}

}  // namespace tempered
