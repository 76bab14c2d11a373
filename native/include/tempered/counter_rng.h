// Counter-based random numbers: every random value is a pure function of
// (seed, stream, index). Dropout masks and the initial weights are therefore the same on
// every backend and thread count, and the TypeScript test reference (test/reference/rng.ts)
// recomputes them exactly. All arithmetic is on uint32 so JavaScript can mirror it with
// Math.imul.
#pragma once

#include <cstdint>

// Functions here are `static inline`: the CPU kernels compiled for AVX-512 include this
// header too, and a shared inline definition could be the copy the linker keeps for code
// that runs on processors without AVX-512.
#if defined(__CUDACC__)
#define TEMPERED_HOST_DEVICE __host__ __device__
#else
#define TEMPERED_HOST_DEVICE
#endif

namespace tempered {

// The murmur3 finaliser: a bijective avalanche on 32 bits.
TEMPERED_HOST_DEVICE static inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// 32 random bits for element `index` of stream (`stream_hi`, `stream_lo`) under `seed`.
TEMPERED_HOST_DEVICE static inline uint32_t counter_bits(uint32_t seed, uint32_t stream_hi, uint32_t stream_lo,
                                                         uint32_t index) {
  uint32_t h = mix32(seed ^ 0x9e3779b9u);
  h = mix32(h ^ (stream_hi * 0x7feb352du));
  h = mix32(h ^ (stream_lo * 0x846ca68bu));
  h = mix32(h ^ index);
  return h;
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float32).
TEMPERED_HOST_DEVICE static inline float counter_uniform(uint32_t seed, uint32_t stream_hi, uint32_t stream_lo,
                                                         uint32_t index) {
  return static_cast<float>(counter_bits(seed, stream_hi, stream_lo, index) >> 8) * (1.0f / 16777216.0f);
}

// Streams. Initial weights use (kStreamInit, param id); dropout uses
// (kStreamDropoutBase + layer, step), index = sample * units + unit.
constexpr uint32_t kStreamInit = 1;
constexpr uint32_t kStreamDropoutBase = 16;

// A dropout layer keeps unit `index` when its uniform draw is at least `rate`; kept
// units are scaled by 1 / (1 - rate) (inverted dropout, as Lasagne's default).
struct DropoutKey {
  uint32_t seed;
  uint32_t step;   // the training step, so every batch draws fresh masks
  uint32_t layer;  // 0, 1, 2
  float rate;      // probability of dropping a unit, in [0, 1)
};

TEMPERED_HOST_DEVICE static inline float dropout_factor(const DropoutKey& key, uint32_t index) {
  float u = counter_uniform(key.seed, kStreamDropoutBase + key.layer, key.step, index);
  return u >= key.rate ? 1.0f / (1.0f - key.rate) : 0.0f;
}

}  // namespace tempered
