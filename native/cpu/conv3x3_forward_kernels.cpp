// 3x3 'valid' convolution, forward: register-blocked over a run of output positions in
// one row (ROWS) times a chunk of output channels (KV vectors), reduction over
// (ky, kx, c) in that order. Each output element is bias + the same sequence of fused
// multiply-adds whatever tile it falls into, so a window recomputed by the sweep equals
// the full layer bit for bit.

#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {
namespace {

// Tile shape: KV vectors of output channels; ROWS positions, at most kMaxRows(KV) so that
// the accumulators, KV weight vectors and one broadcast fit in the vector registers.
constexpr int max_rows(int kv) { return (kVectorRegisters - kv - 2) / kv; }
constexpr int kChunkVectors = kLanes == 16 ? 4 : 2;  // channels per chunk: 64 (avx512), 16 (avx2), 8

// C > 0: the input channel count is a compile-time constant (the network's 1, 32, 64), so
// x offsets fold into the addressing; C == 0: the run-time value is used.
template <int ROWS, int KV, int C>
void conv_tile(const float* x, int in_w, int c_rt, const float* wp, int k_pad, const float* bp, float* y, int out_c,
               int last_lanes, bool relu) {
  const int cin = C > 0 ? C : c_rt;
  vf acc[ROWS][KV];
  for (int v = 0; v < KV; ++v) {
    vf b = vload(bp + v * kLanes);
    for (int i = 0; i < ROWS; ++i) acc[i][v] = b;
  }
  for (int ky = 0; ky < 3; ++ky) {
    for (int kx = 0; kx < 3; ++kx) {
      const float* xp = x + (ky * in_w + kx) * cin;
      const float* wt = wp + (ky * 3 + kx) * cin * k_pad;
      for (int c = 0; c < cin; ++c) {
        vf w[KV];
        for (int v = 0; v < KV; ++v) w[v] = vload(wt + c * k_pad + v * kLanes);
        for (int i = 0; i < ROWS; ++i) {
          vf b = vset1(xp[i * cin + c]);
          for (int v = 0; v < KV; ++v) acc[i][v] = vfma(b, w[v], acc[i][v]);
        }
      }
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    for (int v = 0; v < KV; ++v) {
      vf r = relu ? vmax(acc[i][v], vzero()) : acc[i][v];
      int lanes = v == KV - 1 ? last_lanes : kLanes;
      vstore_lanes(y + i * out_c + v * kLanes, r, lanes);
    }
  }
}

template <int KV, int C, int ROWS = max_rows(KV)>
void conv_tile_rows(int rows, const float* x, int in_w, int c_rt, const float* wp, int k_pad, const float* bp, float* y,
                    int out_c, int last_lanes, bool relu) {
  if constexpr (ROWS >= 1) {
    if (rows == ROWS) {
      conv_tile<ROWS, KV, C>(x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
    } else {
      conv_tile_rows<KV, C, ROWS - 1>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
    }
  }
}

template <int C>
void conv_tile_dispatch(int kv, int rows, const float* x, int in_w, int c_rt, const float* wp, int k_pad,
                        const float* bp, float* y, int out_c, int last_lanes, bool relu) {
  switch (kv) {
    case 1:
      conv_tile_rows<1, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
      break;
    case 2:
      conv_tile_rows<2, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
      break;
    case 3:
      conv_tile_rows<3, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
      break;
    default:
      conv_tile_rows<4, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu);
      break;
  }
}

}  // namespace

void conv3x3_window(const ConvWindow& a, int image, int oy0, int oy1, int ox0, int ox1) {
  const int out_h = a.in_h - 2, out_w = a.in_w - 2;
  const float* x_img = a.x + static_cast<int64_t>(image) * a.in_h * a.in_w * a.in_c;
  float* y_img = a.y + static_cast<int64_t>(image) * out_h * out_w * a.out_c;
  const int width = ox1 - ox0;
  for (int k0 = 0; k0 < a.out_c; k0 += kChunkVectors * kLanes) {
    const int kcount = imin(kChunkVectors * kLanes, a.out_c - k0);
    const int kv = (kcount + kLanes - 1) / kLanes;
    const int last_lanes = kcount - (kv - 1) * kLanes;
    // Split the row evenly into tiles of at most max_rows(kv) positions.
    const int limit = kv == 1 ? max_rows(1) : kv == 2 ? max_rows(2) : kv == 3 ? max_rows(3) : max_rows(4);
    const int tiles = (width + limit - 1) / limit;
    const int rows = (width + tiles - 1) / tiles;
    for (int oy = oy0; oy < oy1; ++oy) {
      for (int ox = ox0; ox < ox1; ox += rows) {
        const int r = imin(rows, ox1 - ox);
        const float* x = x_img + (static_cast<int64_t>(oy) * a.in_w + ox) * a.in_c;
        float* y = y_img + (static_cast<int64_t>(oy) * out_w + ox) * a.out_c + k0;
        const float* wp = a.packed_w + k0;
        const float* bp = a.packed_b + k0;
        switch (a.in_c) {
          case 1:
            conv_tile_dispatch<1>(kv, r, x, a.in_w, 1, wp, a.k_pad, bp, y, a.out_c, last_lanes, a.relu);
            break;
          case 32:
            conv_tile_dispatch<32>(kv, r, x, a.in_w, 32, wp, a.k_pad, bp, y, a.out_c, last_lanes, a.relu);
            break;
          case 64:
            conv_tile_dispatch<64>(kv, r, x, a.in_w, 64, wp, a.k_pad, bp, y, a.out_c, last_lanes, a.relu);
            break;
          default:
            conv_tile_dispatch<0>(kv, r, x, a.in_w, a.in_c, wp, a.k_pad, bp, y, a.out_c, last_lanes, a.relu);
            break;
        }
      }
    }
  }
}

void conv3x3_backward_data_1ch(int h, int w, int k, const float* dy_padded, const float* flipped_w, float* dx,
                               int image) {
  // One input channel: every dx element is a dot product over 9 taps x k channels,
  // vectorised over k.
  const int ph = h + 2, pw = w + 2;
  const float* dyp = dy_padded + static_cast<int64_t>(image) * ph * pw * k;
  float* out = dx + static_cast<int64_t>(image) * h * w;
  const int kv = (k + kLanes - 1) / kLanes;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      vf acc = vzero();
      for (int ky = 0; ky < 3; ++ky) {
        for (int kx = 0; kx < 3; ++kx) {
          const float* d = dyp + ((y + ky) * pw + (x + kx)) * k;
          const float* f = flipped_w + (ky * 3 + kx) * k;
          for (int v = 0; v < kv; ++v) {
            int lanes = imin(kLanes, k - v * kLanes);
            acc = vfma(vload_lanes(d + v * kLanes, lanes), vload_lanes(f + v * kLanes, lanes), acc);
          }
        }
      }
      out[y * w + x] = vsum(acc);
    }
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
