// Dropout masks drawn and applied in one vectorisable pass (compiled per instruction set:
// the hash's 32-bit multiplies vectorise well only with AVX2 or AVX-512).
#include "kernels.h"
#include "simd.h"
#include "tempered/counter_rng.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {

void dropout_block(const DropoutKey& key, const float* x, float* y, int64_t begin, int64_t end) {
  // The per-element hash, with the key's part hoisted out of the loop: the same values as
  // dropout_factor(key, i).
  const uint32_t h0 = mix32(mix32(mix32(key.seed ^ 0x9e3779b9u) ^ ((kStreamDropoutBase + key.layer) * 0x7feb352du)) ^
                            (key.step * 0x846ca68bu));
  const float scale = 1.0f / (1.0f - key.rate);
  const float rate = key.rate;
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t bits = mix32(h0 ^ static_cast<uint32_t>(i));
    const float u = static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
    y[i] = x[i] * (u >= rate ? scale : 0.0f);
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
