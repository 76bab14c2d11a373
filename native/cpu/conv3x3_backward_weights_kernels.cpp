// 3x3 convolution, gradient w.r.t. the weights: for one tap (ky, kx), a run of input
// channels [c0, c0 + c_count) and a run of output channels, sum over the positions of
// images [n0, n1) of x[pos + tap][c] * dy[pos][k]. Vectorised over k (dy is contiguous in
// k), register-blocked over c (x is contiguous in c): each position loads KV vectors of dy
// and broadcasts CT values of x into CT x KV accumulators. The positions are summed in
// raster order, so the result is the same whichever thread computes it.
#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {
namespace {

constexpr int kMaxKv = kLanes == 16 ? 4 : 2;  // output-channel vectors per tile
constexpr int max_ct(int kv) { return (kVectorRegisters - kv - 2) / kv < 12 ? (kVectorRegisters - kv - 2) / kv : 12; }

template <int CT, int KV>
void weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount, float* out) {
  const int out_h = a.in_h - 2, out_w = a.in_w - 2;
  const int ky = tap / 3, kx = tap % 3;
  const int last_lanes = kcount - (KV - 1) * kLanes;  // lanes of the last vector (1..kLanes)
  vf acc[CT][KV];
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < KV; ++v) acc[i][v] = vzero();
  for (int n = n0; n < n1; ++n) {
    const float* x_img = a.x + static_cast<int64_t>(n) * a.in_h * a.in_w * a.in_c;
    const float* dy_img = a.dy + static_cast<int64_t>(n) * out_h * out_w * a.out_c;
    for (int oy = 0; oy < out_h; ++oy) {
      const float* xrow = x_img + (static_cast<int64_t>(oy + ky) * a.in_w + kx) * a.in_c + c0;
      const float* dyrow = dy_img + static_cast<int64_t>(oy) * out_w * a.out_c + k0;
      for (int ox = 0; ox < out_w; ++ox) {
        const float* xp = xrow + ox * a.in_c;
        const float* dp = dyrow + ox * a.out_c;
        vf d[KV];
        for (int v = 0; v < KV - 1; ++v) d[v] = vload(dp + v * kLanes);
        d[KV - 1] = vload_lanes(dp + (KV - 1) * kLanes, last_lanes);
        for (int i = 0; i < CT; ++i) {
          vf b = vset1(xp[i]);
          for (int v = 0; v < KV; ++v) acc[i][v] = vfma(b, d[v], acc[i][v]);
        }
      }
    }
  }
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < KV; ++v) vstore(out + i * a.k_pad + v * kLanes, acc[i][v]);
}

template <int KV, int CT = max_ct(KV)>
void weight_grad_ct(int c_count, const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount, float* out) {
  if constexpr (CT >= 1) {
    if (c_count == CT) {
      weight_grad_tile<CT, KV>(a, n0, n1, tap, c0, k0, kcount, out);
    } else {
      weight_grad_ct<KV, CT - 1>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
    }
  }
}

void weight_grad_dispatch(int kv, int c_count, const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0,
                          int kcount, float* out) {
  switch (kv) {
    case 1: weight_grad_ct<1>(c_count, a, n0, n1, tap, c0, k0, kcount, out); break;
    case 2: weight_grad_ct<2>(c_count, a, n0, n1, tap, c0, k0, kcount, out); break;
#if !defined(TEMPERED_ISA_AVX2) && defined(TEMPERED_ISA_AVX512)
    case 3: weight_grad_ct<3>(c_count, a, n0, n1, tap, c0, k0, kcount, out); break;
    default: weight_grad_ct<4>(c_count, a, n0, n1, tap, c0, k0, kcount, out); break;
#else
    default: weight_grad_ct<kMaxKv>(c_count, a, n0, n1, tap, c0, k0, kcount, out); break;
#endif
  }
}

}  // namespace

// Writes rows r = tap * in_c + c for c in [c0, c0 + c_count) of the packed gradient, for
// output channels [k0, k0 + k_count), into out with row length k_pad:
// out[(c - c0) * k_pad + (k - k0)]. Columns past k_count, up to the next multiple of
// kLanes, hold zeros (k_pad leaves room for them).
void conv3x3_weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int c_count, int k0,
                              int k_count, float* out) {
  for (int kk = 0; kk < k_count; kk += kMaxKv * kLanes) {
    const int kc = imin(kMaxKv * kLanes, k_count - kk);
    const int kv = (kc + kLanes - 1) / kLanes;
    const int ct = max_ct(kv);
    for (int c = 0; c < c_count; c += ct) {
      const int cc = imin(ct, c_count - c);
      weight_grad_dispatch(kv, cc, a, n0, n1, tap, c0 + c, k0 + kk, kc, out + c * a.k_pad + kk);
    }
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
