// Winograd F(2x2, 3x3) convolution (Lavin and Gray, 2016, "Fast Algorithms for Convolutional
// Neural Networks"), NHWC, per block of 2x2 output tiles:
//   1. input transform: V[xi][t][c] = (B^T d B)[xi] of the 4x4 input patch d of tile t,
//      read with a zero border of `pad` (0: 'valid', 2: the backward data pass's 'full');
//   2. 16 products M[xi] = V[xi] [tiles x C] times U[xi] [C x K] (U = G g G^T, the
//      transformed kernel, winograd_f2x2_3x3.cpp), register-blocked like the direct kernel,
//      the reduction over c in order;
//   3. output transform: y = A^T M A (+ bias, ReLU), the outputs past the layer's edge dropped.
// 16 products per 4 outputs instead of 36: 2.25x fewer multiply-adds. Every element is a
// fixed sequence of operations whatever block or thread it falls into, so training stays
// deterministic for any thread count, and lets the sweep recompute single tiles that equal
// the full forward pass's bit for bit; its rounding differs from the direct kernel's in the
// last bits (docs/performance.md).

#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {
namespace {

constexpr int max_rows(int kv) { return (kVectorRegisters - kv - 2) / kv; }
constexpr int kChunkVectors = kLanes == 16 ? 4 : 2;

// M[t][k] = sum_c V[t][c] U[c][k] for ROWS tiles and KV vectors of k.
template <int ROWS, int KV>
void product_tile(const float* v, int v_stride, const float* u, int k_pad, int c_count, float* m) {
  vf acc[ROWS][KV];
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < KV; ++j) acc[i][j] = vzero();
  for (int c = 0; c < c_count; ++c) {
    vf w[KV];
    for (int j = 0; j < KV; ++j) w[j] = vload(u + static_cast<int64_t>(c) * k_pad + j * kLanes);
    for (int i = 0; i < ROWS; ++i) {
      vf b = vset1(v[i * v_stride + c]);
      for (int j = 0; j < KV; ++j) acc[i][j] = vfma(b, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < KV; ++j) vstore(m + i * k_pad + j * kLanes, acc[i][j]);
}

template <int KV, int ROWS = max_rows(KV)>
void product_rows(int rows, const float* v, int v_stride, const float* u, int k_pad, int c_count, float* m) {
  if constexpr (ROWS >= 1) {
    if (rows == ROWS) {
      product_tile<ROWS, KV>(v, v_stride, u, k_pad, c_count, m);
    } else {
      product_rows<KV, ROWS - 1>(rows, v, v_stride, u, k_pad, c_count, m);
    }
  }
}

void product(int kv, int rows, const float* v, int v_stride, const float* u, int k_pad, int c_count, float* m) {
  switch (kv) {
    case 1:
      product_rows<1>(rows, v, v_stride, u, k_pad, c_count, m);
      break;
    case 2:
      product_rows<2>(rows, v, v_stride, u, k_pad, c_count, m);
      break;
    case 3:
      product_rows<3>(rows, v, v_stride, u, k_pad, c_count, m);
      break;
    default:
      product_rows<4>(rows, v, v_stride, u, k_pad, c_count, m);
      break;
  }
}

int rows_limit(int kv) { return kv == 1 ? max_rows(1) : kv == 2 ? max_rows(2) : kv == 3 ? max_rows(3) : max_rows(4); }

// The 16 transformed inputs of one tile for channels [c, c + lanes): d[r][s] is the input at
// row iy0 + r, column ix0 + s (zero outside the image).
void input_tile(const float* x_img, int in_h, int in_w, int cin, int iy0, int ix0, int c, mask_t mask, float* v,
                int64_t xi_stride) {
  vf d[4][4];
  if (iy0 >= 0 && iy0 + 4 <= in_h && ix0 >= 0 && ix0 + 4 <= in_w) {  // inside: no checks
    const float* p = x_img + (static_cast<int64_t>(iy0) * in_w + ix0) * cin + c;
    for (int r = 0; r < 4; ++r)
      for (int s = 0; s < 4; ++s) d[r][s] = vload_mask(p + (static_cast<int64_t>(r) * in_w + s) * cin, mask);
  } else {
    for (int r = 0; r < 4; ++r) {
      const int iy = iy0 + r;
      for (int s = 0; s < 4; ++s) {
        const int ix = ix0 + s;
        d[r][s] = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w
                      ? vload_mask(x_img + (static_cast<int64_t>(iy) * in_w + ix) * cin + c, mask)
                      : vzero();
      }
    }
  }
  // B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: columns, then rows.
  vf t[4][4];
  for (int r = 0; r < 4; ++r) {
    t[r][0] = vsub(d[r][0], d[r][2]);
    t[r][1] = vadd(d[r][1], d[r][2]);
    t[r][2] = vsub(d[r][2], d[r][1]);
    t[r][3] = vsub(d[r][1], d[r][3]);
  }
  for (int s = 0; s < 4; ++s) {
    vstore(v + 0 * 4 * xi_stride + s * xi_stride, vsub(t[0][s], t[2][s]));
    vstore(v + 1 * 4 * xi_stride + s * xi_stride, vadd(t[1][s], t[2][s]));
    vstore(v + 2 * 4 * xi_stride + s * xi_stride, vsub(t[2][s], t[1][s]));
    vstore(v + 3 * 4 * xi_stride + s * xi_stride, vsub(t[1][s], t[3][s]));
  }
}

// A^T M A (+ bias, ReLU) of channels [k, k + kLanes) of one tile: out[i][j] is output (2 ty
// + i, 2 tx + j). The pooled and the unpooled paths both take their outputs from here.
void output_transform(const WinogradArgs& a, const float* mt, int64_t m_xi, int k, vf (&out)[2][2]) {
  vf q[4][4];
  for (int r = 0; r < 4; ++r)
    for (int s = 0; s < 4; ++s) q[r][s] = vload(mt + (r * 4 + s) * m_xi + k);
  vf p[2][4];
  for (int s = 0; s < 4; ++s) {
    p[0][s] = vadd(vadd(q[0][s], q[1][s]), q[2][s]);
    p[1][s] = vsub(vsub(q[1][s], q[2][s]), q[3][s]);
  }
  const vf b = a.bias != nullptr ? vload_lanes(a.bias + k, imin(kLanes, a.k - k)) : vzero();
  for (int i = 0; i < 2; ++i) {
    out[i][0] = vadd(vadd(vadd(p[i][0], p[i][1]), p[i][2]), b);
    out[i][1] = vadd(vsub(vsub(p[i][1], p[i][2]), p[i][3]), b);
    if (a.relu)
      for (int j = 0; j < 2; ++j) out[i][j] = vmax(out[i][j], vzero());
  }
}

// One whole tile's 2x2 max-pool (out_h and out_w even) into y[k]: the maximum of its four
// outputs in maxpool2x2_forward's order (a later one wins only when strictly greater;
// vmax(a, b) is a > b ? a : b), so the pooled values equal the two operations' bit for bit,
// NaN included.
void pooled_output_tile(const WinogradArgs& a, const float* mt, int64_t m_xi, float* y) {
  for (int k = 0; k < a.k; k += kLanes) {
    vf out[2][2];
    output_transform(a, mt, m_xi, k, out);
    const vf best = vmax(out[1][1], vmax(out[1][0], vmax(out[0][1], out[0][0])));
    vstore_lanes(y + k, best, imin(kLanes, a.k - k));
  }
}

}  // namespace

void winograd_f2x2_block(const WinogradArgs& a, int64_t tile0, int count, float* v, float* m) {
  const int tiles_per_image = a.tiles_h * a.tiles_w;
  // V[xi][t][c_pad] and M[xi][t][k_pad], each xi plane 64 bytes longer than its rows: planes
  // 4 KB apart would put a tile's 16 loads and stores into one L1 cache set.
  const int64_t v_xi = static_cast<int64_t>(count) * a.c_pad + kWinogradPlanePad;
  const int64_t m_xi = static_cast<int64_t>(count) * a.k_pad + kWinogradPlanePad;

  // 1. Input transform, vectorised over channels.
  for (int t = 0; t < count; ++t) {
    const int64_t tile = tile0 + t;
    const int image = static_cast<int>(tile / tiles_per_image), in_image = static_cast<int>(tile % tiles_per_image);
    const int iy0 = in_image / a.tiles_w * 2 - a.pad, ix0 = in_image % a.tiles_w * 2 - a.pad;
    const float* x_img = a.x + static_cast<int64_t>(image) * a.in_h * a.in_w * a.c;
    for (int c = 0; c < a.c; c += kLanes)
      input_tile(x_img, a.in_h, a.in_w, a.c, iy0, ix0, c, make_mask(a.c - c), v + t * a.c_pad + c, v_xi);
  }

  // 2. The 16 products, in chunks of output channels and runs of tiles the registers hold.
  for (int xi = 0; xi < 16; ++xi) {
    const float* u = a.u + static_cast<int64_t>(xi) * a.c * a.k_pad;
    for (int k0 = 0; k0 < a.k; k0 += kChunkVectors * kLanes) {
      const int kv = (imin(kChunkVectors * kLanes, a.k - k0) + kLanes - 1) / kLanes;
      const int limit = rows_limit(kv), runs = (count + limit - 1) / limit, rows = (count + runs - 1) / runs;
      for (int t = 0; t < count; t += rows)
        product(kv, imin(rows, count - t), v + xi * v_xi + static_cast<int64_t>(t) * a.c_pad, a.c_pad, u + k0, a.k_pad,
                a.c, m + xi * m_xi + static_cast<int64_t>(t) * a.k_pad + k0);
    }
  }

  // 3. Output transform, A^T = [1 1 1 0; 0 1 -1 -1], then bias and ReLU (and the max-pool).
  for (int t = 0; t < count; ++t) {
    const int64_t tile = tile0 + t;
    const int image = static_cast<int>(tile / tiles_per_image), in_image = static_cast<int>(tile % tiles_per_image);
    const int oy0 = in_image / a.tiles_w * 2, ox0 = in_image % a.tiles_w * 2;
    if (a.pool2x2) {
      pooled_output_tile(a, m + static_cast<int64_t>(t) * a.k_pad, m_xi,
                         a.y + (static_cast<int64_t>(image) * tiles_per_image + in_image) * a.k);
      continue;
    }
    float* y_img = a.y + static_cast<int64_t>(image) * a.out_h * a.out_w * a.k;
    const float* mt = m + static_cast<int64_t>(t) * a.k_pad;
    for (int k = 0; k < a.k; k += kLanes) {
      vf out[2][2];
      output_transform(a, mt, m_xi, k, out);
      for (int i = 0; i < 2 && oy0 + i < a.out_h; ++i)
        for (int j = 0; j < 2 && ox0 + j < a.out_w; ++j)
          vstore_lanes(y_img + (static_cast<int64_t>(oy0 + i) * a.out_w + ox0 + j) * a.k + k, out[i][j],
                       imin(kLanes, a.k - k));
    }
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
