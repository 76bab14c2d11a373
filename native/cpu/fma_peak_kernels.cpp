// The machine's fp32 multiply-add peak for this instruction set: independent chains of
// fused multiply-adds, enough of them to hide the latency, nothing else in the loop.
#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {

// Chains needed = FMA latency x FMAs issued per cycle: 4 x 2 = 8 on Intel server cores and
// on Zen 3/4 (Zen 4 issues one 512-bit FMA per cycle: 4 x 1 with AVX-512). 12 covers that
// with room, and 12 accumulators + the two operands fit in the 16 registers of AVX2/SSE,
// so nothing spills to the stack inside the loop (16 chains did, and understated the peak).
constexpr int kChains = kVectorRegisters - 2 < 12 ? kVectorRegisters - 2 : 12;

double fma_peak(int64_t iterations) {
  vf acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vset1(0.001f * static_cast<float>(i));
  const vf a = vset1(0.999999f), b = vset1(1e-7f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = vfma(acc[i], a, b);
  float sink = 0;
  for (int i = 0; i < kChains; ++i) sink += vsum(acc[i]);
  // Keep the result alive without a branch the compiler could remove the loop around.
  volatile float keep = sink;
  (void)keep;
  return 2.0 * kLanes * kChains * static_cast<double>(iterations);
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
