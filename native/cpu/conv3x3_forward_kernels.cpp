// 3x3 'valid' convolution, forward: register-blocked over a run of output positions in
// one row (ROWS) times a chunk of output channels (KV vectors), reduction over
// (ky, kx, c) in that order. Each output element is bias + the same sequence of fused
// multiply-adds whatever tile it falls into, so a window recomputed by the sweep equals
// the full layer bit for bit. The same tiles compute the backward data pass as a 'full'
// convolution of dy (conv3x3_full_row), where taps that would fall outside dy are skipped.

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

// The taps a tile sums: ky in [ky0, ky1), kx in [kx0, kx1). All nine for a 'valid'
// convolution; fewer at the border of a 'full' one, whose missing taps would read zeros.
struct Taps {
  int ky0, ky1, kx0, kx1;
};
constexpr Taps kAllTaps{0, 3, 0, 3};

// One tap's multiply-adds into the accumulators.
template <int ROWS, int KV, int C>
inline void conv_tap(vf (&acc)[ROWS][KV], const float* xp, const float* wt, int cin, int k_pad) {
  for (int c = 0; c < (C > 0 ? C : cin); ++c) {
    vf w[KV];
    for (int v = 0; v < KV; ++v) w[v] = vload(wt + c * k_pad + v * kLanes);
    for (int i = 0; i < ROWS; ++i) {
      vf b = vset1(xp[i * cin + c]);
      for (int v = 0; v < KV; ++v) acc[i][v] = vfma(b, w[v], acc[i][v]);
    }
  }
}

// The tile's accumulators after all its taps. ALL: the nine taps of a 'valid' convolution,
// unrolled, in a function of its own: with loops of run-time bounds around a short
// reduction (one input channel) in the same function, GCC kept the accumulators on the
// stack and conv1 ran several times slower. The same multiply-adds in the same order either way.
template <int ROWS, int KV, int C, bool ALL>
__attribute__((noinline)) void conv_tile_sum(vf (&acc)[ROWS][KV], const float* x, int in_w, int cin, const float* wp,
                                             int k_pad, Taps t) {
  if constexpr (ALL) {
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx)
        conv_tap<ROWS, KV, C>(acc, x + (ky * in_w + kx) * cin, wp + (ky * 3 + kx) * cin * k_pad, cin, k_pad);
  } else {
    for (int ky = t.ky0; ky < t.ky1; ++ky)
      for (int kx = t.kx0; kx < t.kx1; ++kx)
        conv_tap<ROWS, KV, C>(acc, x + ((ky - t.ky0) * in_w + (kx - t.kx0)) * cin, wp + (ky * 3 + kx) * cin * k_pad,
                              cin, k_pad);
  }
}

// C > 0: the input channel count is a compile-time constant (the network's 1, 32, 64), so
// x offsets fold into the addressing; C == 0: the run-time value is used. x points at the
// input of tap (ky0, kx0) for the tile's first position; bp == nullptr: no bias (zeros).
template <int ROWS, int KV, int C>
void conv_tile(const float* x, int in_w, int c_rt, const float* wp, int k_pad, const float* bp, float* y, int out_c,
               int last_lanes, bool relu, Taps t) {
  const int cin = C > 0 ? C : c_rt;
  vf acc[ROWS][KV];
  for (int v = 0; v < KV; ++v) {
    vf b = bp != nullptr ? vload(bp + v * kLanes) : vzero();
    for (int i = 0; i < ROWS; ++i) acc[i][v] = b;
  }
  if (t.ky0 == 0 && t.ky1 == 3 && t.kx0 == 0 && t.kx1 == 3)
    conv_tile_sum<ROWS, KV, C, true>(acc, x, in_w, cin, wp, k_pad, t);
  else
    conv_tile_sum<ROWS, KV, C, false>(acc, x, in_w, cin, wp, k_pad, t);
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
                    int out_c, int last_lanes, bool relu, Taps t) {
  if constexpr (ROWS >= 1) {
    if (rows == ROWS) {
      conv_tile<ROWS, KV, C>(x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
    } else {
      conv_tile_rows<KV, C, ROWS - 1>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
    }
  }
}

template <int C>
void conv_tile_dispatch(int kv, int rows, const float* x, int in_w, int c_rt, const float* wp, int k_pad,
                        const float* bp, float* y, int out_c, int last_lanes, bool relu, Taps t) {
  switch (kv) {
    case 1:
      conv_tile_rows<1, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    case 2:
      conv_tile_rows<2, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    case 3:
      conv_tile_rows<3, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    default:
      conv_tile_rows<4, C>(rows, x, in_w, c_rt, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
  }
}

// One tile with the input channel count folded in where the network has it.
void conv_tile_any(int in_c, int kv, int rows, const float* x, int in_w, const float* wp, int k_pad, const float* bp,
                   float* y, int out_c, int last_lanes, bool relu, Taps t) {
  switch (in_c) {
    case 1:
      conv_tile_dispatch<1>(kv, rows, x, in_w, 1, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    case 32:
      conv_tile_dispatch<32>(kv, rows, x, in_w, 32, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    case 64:
      conv_tile_dispatch<64>(kv, rows, x, in_w, 64, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
    default:
      conv_tile_dispatch<0>(kv, rows, x, in_w, in_c, wp, k_pad, bp, y, out_c, last_lanes, relu, t);
      break;
  }
}

// The channel chunk [k0, k0 + kcount) in vectors, and the positions per tile that split a
// run of `width` evenly into tiles the registers hold.
struct Chunk {
  int kv, last_lanes, rows;
};
Chunk chunk_of(int kcount, int width) {
  const int kv = (kcount + kLanes - 1) / kLanes;
  const int limit = kv == 1 ? max_rows(1) : kv == 2 ? max_rows(2) : kv == 3 ? max_rows(3) : max_rows(4);
  const int tiles = imax(1, (width + limit - 1) / limit);
  return {kv, kcount - (kv - 1) * kLanes, (width + tiles - 1) / tiles};
}

}  // namespace

void conv3x3_window(const ConvWindow& a, int image, int oy0, int oy1, int ox0, int ox1) {
  const int out_h = a.in_h - 2, out_w = a.in_w - 2;
  const float* x_img = a.x + static_cast<int64_t>(image) * a.in_h * a.in_w * a.in_c;
  float* y_img = a.y + static_cast<int64_t>(image) * out_h * out_w * a.out_c;
  for (int k0 = 0; k0 < a.out_c; k0 += kChunkVectors * kLanes) {
    const Chunk ch = chunk_of(imin(kChunkVectors * kLanes, a.out_c - k0), ox1 - ox0);
    for (int oy = oy0; oy < oy1; ++oy) {
      for (int ox = ox0; ox < ox1; ox += ch.rows) {
        const float* x = x_img + (static_cast<int64_t>(oy) * a.in_w + ox) * a.in_c;
        float* y = y_img + (static_cast<int64_t>(oy) * out_w + ox) * a.out_c + k0;
        conv_tile_any(a.in_c, ch.kv, imin(ch.rows, ox1 - ox), x, a.in_w, a.packed_w + k0, a.k_pad, a.packed_b + k0, y,
                      a.out_c, ch.last_lanes, a.relu, kAllTaps);
      }
    }
  }
}

void conv3x3_full_row(const ConvFull& a, int image, int y) {
  const int out_w = a.w + 2;
  const float* dy_img = a.dy + static_cast<int64_t>(image) * a.h * a.w * a.k;
  float* dx_row = a.dx + (static_cast<int64_t>(image) * (a.h + 2) + y) * out_w * a.c;
  // Tap (ky, kx) of position x reads dy[y + ky - 2][x + kx - 2]: only those inside dy are
  // summed. Columns [2, w) read every kx; the two on each side are tiles of one position.
  const int ky0 = imax(0, 2 - y), ky1 = imin(3, a.h + 2 - y);
  const int left_end = imin(2, out_w), right_begin = imax(2, a.w);
  for (int c0 = 0; c0 < a.c; c0 += kChunkVectors * kLanes) {
    const Chunk ch = chunk_of(imin(kChunkVectors * kLanes, a.c - c0), imax(1, a.w - 2));
    auto tile = [&](int x0, int rows, int kx0, int kx1) {
      const float* src = dy_img + (static_cast<int64_t>(y + ky0 - 2) * a.w + (x0 + kx0 - 2)) * a.k;
      conv_tile_any(a.k, ch.kv, rows, src, a.w, a.packed_w + c0, a.c_pad, nullptr, dx_row + x0 * a.c + c0, a.c,
                    ch.last_lanes, false, Taps{ky0, ky1, kx0, kx1});
    };
    auto border = [&](int x) { tile(x, 1, imax(0, 2 - x), imin(3, a.w + 2 - x)); };
    for (int x = 0; x < left_end; ++x) border(x);
    for (int x = 2; x < a.w; x += ch.rows) tile(x, imin(ch.rows, a.w - x), 0, 3);
    for (int x = right_begin; x < out_w; ++x) border(x);
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
