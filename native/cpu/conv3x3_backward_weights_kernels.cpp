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

template <int CT, int KV, bool PARTIAL>
void weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount, float* out) {
  // Everything the loops read, as locals: read through the struct, GCC kept the
  // accumulators in memory and stored them on every iteration.
  const int in_h = a.in_h, in_w = a.in_w, in_c = a.in_c, out_c = a.out_c;
  const int out_h = in_h - 2, out_w = in_w - 2;
  const int ky = tap / 3, kx = tap % 3;
  const int64_t x_image = static_cast<int64_t>(in_h) * in_w * in_c,
                dy_image = static_cast<int64_t>(out_h) * out_w * out_c;
  // A partial last vector needs a masked load; GCC then keeps the accumulators in memory,
  // so full tiles (the network's every layer) take the unmasked path.
  const mask_t last = make_mask(kcount - (KV - 1) * kLanes);
  vf acc[CT][KV];
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < KV; ++v) acc[i][v] = vzero();
  // Rows of all images in one loop: (image, oy) -> row.
  const int rows = (n1 - n0) * out_h;
  for (int row = 0; row < rows; ++row) {
    const int n = n0 + row / out_h, oy = row % out_h;
    const float* xp = a.x + n * x_image + (static_cast<int64_t>(oy + ky) * in_w + kx) * in_c + c0;
    const float* dp = a.dy + n * dy_image + static_cast<int64_t>(oy) * out_w * out_c + k0;
    for (int ox = 0; ox < out_w; ++ox, xp += in_c, dp += out_c) {
      vf d[KV];
      for (int v = 0; v < KV - 1; ++v) d[v] = vload(dp + v * kLanes);
      d[KV - 1] = PARTIAL ? vload_mask(dp + (KV - 1) * kLanes, last) : vload(dp + (KV - 1) * kLanes);
      for (int i = 0; i < CT; ++i) {
        vf b = vset1(xp[i]);
        for (int v = 0; v < KV; ++v) acc[i][v] = vfma(b, d[v], acc[i][v]);
      }
    }
  }
  const int k_pad = a.k_pad;
  for (int i = 0; i < CT; ++i)
    for (int v = 0; v < KV; ++v) vstore(out + i * k_pad + v * kLanes, acc[i][v]);
}

// One input channel (conv1): the 9 taps are the rows of the tile, so every dy load feeds
// 9 x KV independent accumulators instead of KV.
template <int KV>
void weight_grad_all_taps(const ConvWeightGrad& a, int n0, int n1, int k0, float* out) {
  const int in_h = a.in_h, in_w = a.in_w, out_c = a.out_c;
  const int out_h = in_h - 2, out_w = in_w - 2;
  const int64_t x_image = static_cast<int64_t>(in_h) * in_w, dy_image = static_cast<int64_t>(out_h) * out_w * out_c;
  vf acc[9][KV];
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < KV; ++v) acc[t][v] = vzero();
  const int rows = (n1 - n0) * out_h;
  for (int row = 0; row < rows; ++row) {
    const int n = n0 + row / out_h, oy = row % out_h;
    const float* xp = a.x + n * x_image + static_cast<int64_t>(oy) * in_w;
    const float* dp = a.dy + n * dy_image + static_cast<int64_t>(oy) * out_w * out_c + k0;
    for (int ox = 0; ox < out_w; ++ox, ++xp, dp += out_c) {
      vf d[KV];
      for (int v = 0; v < KV; ++v) d[v] = vload(dp + v * kLanes);
      for (int t = 0; t < 9; ++t) {
        vf b = vset1(xp[(t / 3) * in_w + t % 3]);
        for (int v = 0; v < KV; ++v) acc[t][v] = vfma(b, d[v], acc[t][v]);
      }
    }
  }
  const int k_pad = a.k_pad;
  for (int t = 0; t < 9; ++t)
    for (int v = 0; v < KV; ++v) vstore(out + t * k_pad + v * kLanes, acc[t][v]);
}

template <int KV, int CT = max_ct(KV)>
void weight_grad_ct(int c_count, const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0, int kcount,
                    float* out) {
  if constexpr (CT >= 1) {
    if (c_count == CT) {
      if (kcount == KV * kLanes)
        weight_grad_tile<CT, KV, false>(a, n0, n1, tap, c0, k0, kcount, out);
      else
        weight_grad_tile<CT, KV, true>(a, n0, n1, tap, c0, k0, kcount, out);
    } else {
      weight_grad_ct<KV, CT - 1>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
    }
  }
}

void weight_grad_dispatch(int kv, int c_count, const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int k0,
                          int kcount, float* out) {
  switch (kv) {
    case 1:
      weight_grad_ct<1>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
      break;
    case 2:
      weight_grad_ct<2>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
      break;
#if !defined(TEMPERED_ISA_AVX2) && defined(TEMPERED_ISA_AVX512)
    case 3:
      weight_grad_ct<3>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
      break;
    default:
      weight_grad_ct<4>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
      break;
#else
    default:
      weight_grad_ct<kMaxKv>(c_count, a, n0, n1, tap, c0, k0, kcount, out);
      break;
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
  // tap < 0 (only with one input channel): all 9 taps at once, rows 0..8 of out.
  if (tap < 0) {
    for (int kk = 0; kk < k_count; kk += 2 * kLanes) {
      if (k_count - kk >= 2 * kLanes) {
        weight_grad_all_taps<2>(a, n0, n1, k0 + kk, out + kk);
      } else {
        for (int t = 0; t < 9; ++t)
          conv3x3_weight_grad_tile(a, n0, n1, t, 0, 1, k0 + kk, k_count - kk, out + t * a.k_pad + kk);
      }
    }
    return;
  }
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
