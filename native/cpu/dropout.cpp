// dropout: y = x * mask / (1 - rate), the mask drawn by counter_rng.h from
// (seed, step, layer, element), so forward and backward use the same mask without
// storing it, and every backend draws the same one.
#include <algorithm>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::dropout(const DropoutKey& key, int n, int units, const float* x, float* y) {
  const int64_t count = static_cast<int64_t>(n) * units;
  constexpr int64_t kBlock = 4096;
  const KernelTable& kt = *kernels_;
  pool().parallel_for((count + kBlock - 1) / kBlock, [&](int64_t task) {
    int64_t begin = task * kBlock, end = std::min(count, begin + kBlock);
    kt.dropout_block(key, x, y, begin, end);
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
