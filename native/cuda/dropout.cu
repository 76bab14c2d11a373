// dropout: y = x * dropout_factor(key, i), the mask drawn by counter_rng.h from
// (seed, step, layer, element), so it equals the CPU backend's mask bit for bit. Forward
// and backward alike; x and y may be the same buffer.
#include "cuda_backend.h"
#include "tempered/counter_rng.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void dropout_kernel(DropoutKey key, size_t count, const float* x, float* y) {
  for (size_t i = grid_index(); i < count; i += grid_stride())
    y[i] = x[i] * dropout_factor(key, static_cast<uint32_t>(i));
}

}  // namespace

Status CudaBackend::dropout(const DropoutKey& key, int n, int units, const float* x, float* y) {
  TEMPERED_TRY(healthy("dropout"));
  const size_t count = static_cast<size_t>(n) * units;
  if (count == 0) return Status::Ok();
  return launch("dropout", dropout_kernel, dim3(blocks_for(count)), dim3(kThreads), key, count, x, y);
}

}  // namespace cuda
}  // namespace tempered
