// 3x3 convolution, gradient w.r.t. the weights: for one tap (ky, kx), a run of input
// channels [c0, c0 + c_count) and a chunk of output channels, sum over the positions of
// images [n0, n1) of x[pos + tap][c] * dy[pos][k]. Vectorised over k (dy is contiguous
// in k), register-blocked over c (x is contiguous in c); the positions are summed in
// raster order, so the result is the same whichever thread computes it.

#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {
namespace {

constexpr int kKv = 2;                                     // output-channel vectors per tile
constexpr int kMaxC = (kVectorRegisters - kKv - 2) / kKv;  // input channels per tile

template <int CT>
void weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount, float* out) {
  const int out_h = a.in_h - 2, out_w = a.in_w - 2;
  const int ky = tap / 3, kx = tap % 3;
  const int kv = (kcount + kLanes - 1) / kLanes;  // 1 or kKv
  const int last_lanes = kcount - (kv - 1) * kLanes;
  vf acc[CT][kKv];
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < kKv; ++v) acc[i][v] = vzero();
  for (int n = n0; n < n1; ++n) {
    const float* x_img = a.x + static_cast<int64_t>(n) * a.in_h * a.in_w * a.in_c;
    const float* dy_img = a.dy + static_cast<int64_t>(n) * out_h * out_w * a.out_c;
    for (int oy = 0; oy < out_h; ++oy) {
      const float* xrow = x_img + (static_cast<int64_t>(oy + ky) * a.in_w + kx) * a.in_c + c0;
      const float* dyrow = dy_img + static_cast<int64_t>(oy) * out_w * a.out_c + k0;
      for (int ox = 0; ox < out_w; ++ox) {
        const float* xp = xrow + ox * a.in_c;
        const float* dp = dyrow + ox * a.out_c;
        vf d[kKv];
        if (kv == kKv && last_lanes == kLanes) {
          for (int v = 0; v < kKv; ++v) d[v] = vload(dp + v * kLanes);
        } else {
          for (int v = 0; v < kKv; ++v) {
            int lanes = v < kv - 1 ? kLanes : v == kv - 1 ? last_lanes : 0;
            d[v] = lanes > 0 ? vload_lanes(dp + v * kLanes, lanes) : vzero();
          }
        }
        for (int i = 0; i < CT; ++i) {
          vf b = vset1(xp[i]);
          for (int v = 0; v < kKv; ++v) acc[i][v] = vfma(b, d[v], acc[i][v]);
        }
      }
    }
  }
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < kKv; ++v) vstore(out + i * a.k_pad + v * kLanes, acc[i][v]);
}

template <int CT = kMaxC>
void weight_grad_dispatch(int c_count, const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount,
                          float* out) {
  if constexpr (CT >= 1) {
    if (c_count == CT) {
      weight_grad_tile<CT>(a, n0, n1, tap, c0, k0, kcount, out);
    } else {
      weight_grad_dispatch<CT - 1>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
    }
  }
}

}  // namespace

// Writes rows r = tap * in_c + c for c in [c0, c0 + c_count) of the packed gradient, for
// output channels [k0, k0 + k_count) (k_count <= kKv * kLanes), into out with row length
// k_pad: out[(c - c0) * k_pad + (k - k0)]. Columns past k_count hold zeros.
void conv3x3_weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int c_count, int k0,
                              int k_count, float* out) {
  for (int c = 0; c < c_count; c += kMaxC) {
    int cc = imin(kMaxC, c_count - c);
    for (int kk = 0; kk < k_count; kk += kKv * kLanes) {
      int kc = imin(kKv * kLanes, k_count - kk);
      weight_grad_dispatch(cc, a, n0, n1, tap, c0 + c, k0 + kk, kc, out + c * a.k_pad + kk);
    }
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
