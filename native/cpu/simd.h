// The vector types and operations the CPU kernels are written in. Each kernel source
// (files named *_kernels.cpp) is compiled three times, once per instruction set, with
// TEMPERED_ISA_AVX512, TEMPERED_ISA_AVX2 or neither defined; each copy lands in its own
// namespace (avx512, avx2, generic) and kernel_table.cpp picks one at run time from
// CPUID, so one binary serves every x86-64 machine.
//
// Within one instruction set every output element is a fixed sequence of operations, so
// results do not depend on thread count or on which tile an element fell into (the
// Algorithm-2 sweep relies on this to be bit-identical to a full forward pass).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(TEMPERED_ISA_AVX512)
#include <immintrin.h>
#define TEMPERED_ISA_NS avx512
#elif defined(TEMPERED_ISA_AVX2)
#include <immintrin.h>
#define TEMPERED_ISA_NS avx2
#else
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#define TEMPERED_ISA_NS generic
#endif

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {

#if defined(TEMPERED_ISA_AVX512)

using vf = __m512;
constexpr int kLanes = 16;
constexpr int kVectorRegisters = 32;
constexpr const char* kIsaName = "avx512";
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline __mmask16 lane_mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(lane_mask(n), p); }
// A precomputed lane mask, for loads without a branch in hot loops.
using mask_t = __mmask16;
inline mask_t make_mask(int n) { return lane_mask(n >= kLanes ? kLanes : n); }
inline vf vload_mask(const float* p, mask_t m) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstore_n(float* p, vf v, int n) { _mm512_mask_storeu_ps(p, lane_mask(n), v); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }  // a * b + c, one rounding
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline float vsum(vf v) {
  // A fixed pairwise order: 16 -> 8 -> 4 -> 2 -> 1.
  // The upper 256 bits via a shuffle (GCC 12 warns about the extract intrinsics' undefined pass-through).
  __m256 hi = _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), hi);
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
  return _mm_cvtss_f32(q);
}

#elif defined(TEMPERED_ISA_AVX2)

using vf = __m256;
constexpr int kLanes = 8;
constexpr int kVectorRegisters = 16;
constexpr const char* kIsaName = "avx2";
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf v) { _mm256_storeu_ps(p, v); }
inline __m256i lane_mask(int n) {
  static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - n));
}
inline vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, lane_mask(n)); }
using mask_t = __m256i;
inline mask_t make_mask(int n) { return lane_mask(n >= kLanes ? kLanes : n); }
inline vf vload_mask(const float* p, mask_t m) { return _mm256_maskload_ps(p, m); }
inline void vstore_n(float* p, vf v, int n) { _mm256_maskstore_ps(p, lane_mask(n), v); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline float vsum(vf v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
  return _mm_cvtss_f32(q);
}

#else

// Portable path: four lanes of plain C++ (the compiler maps it to SSE2 on x86-64 and to
// NEON or scalar code elsewhere); multiply and add round separately.
struct vf {
  float v[4];
};
constexpr int kLanes = 4;
constexpr int kVectorRegisters = 16;
constexpr const char* kIsaName = "generic";
inline vf vzero() { return vf{{0.f, 0.f, 0.f, 0.f}}; }
inline vf vset1(float x) { return vf{{x, x, x, x}}; }
inline vf vload(const float* p) {
  vf r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
inline void vstore(float* p, vf v) { std::memcpy(p, v.v, sizeof(v.v)); }
inline vf vload_n(const float* p, int n) {
  vf r = vzero();
  for (int i = 0; i < n; ++i) r.v[i] = p[i];
  return r;
}
inline void vstore_n(float* p, vf v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v.v[i];
}
using mask_t = int;
inline mask_t make_mask(int n) { return n >= kLanes ? kLanes : n; }
inline vf vload_mask(const float* p, mask_t m) { return m >= kLanes ? vload(p) : vload_n(p, m); }
inline vf vfma(vf a, vf b, vf c) {
  vf r;
  for (int i = 0; i < 4; ++i) {
    float m = a.v[i] * b.v[i];
    r.v[i] = m + c.v[i];
  }
  return r;
}
inline vf vadd(vf a, vf b) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] + b.v[i];
  return r;
}
inline vf vsub(vf a, vf b) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] - b.v[i];
  return r;
}
inline vf vmul(vf a, vf b) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] * b.v[i];
  return r;
}
inline vf vmax(vf a, vf b) {
  vf r;
  for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return r;
}
inline float vsum(vf v) { return (v.v[0] + v.v[2]) + (v.v[1] + v.v[3]); }

#endif

// Kernel files use these rather than std::min: an inline function from a standard header
// instantiated in an AVX-512 translation unit could be the copy the linker keeps for the
// whole library, and then run on a processor without AVX-512.
inline int imin(int a, int b) { return a < b ? a : b; }
inline int imax(int a, int b) { return a > b ? a : b; }

// Stores v, or only its first n lanes when n < kLanes.
inline void vstore_lanes(float* p, vf v, int n) {
  if (n >= kLanes) {
    vstore(p, v);
  } else {
    vstore_n(p, v, n);
  }
}
inline vf vload_lanes(const float* p, int n) { return n >= kLanes ? vload(p) : vload_n(p, n); }

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
