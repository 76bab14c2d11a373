// Dense (fully connected) layers. Weights are PyTorch's [out][in], rows contiguous in
// `in`, so no packing is needed:
//  - forward: each output is a dot product of two contiguous rows, vectorised over `in`,
//    register-blocked over samples x outputs, lanes summed in a fixed order at the end;
//  - backward data: dx[n][i] = sum_o dy[n][o] w[o][i], vectorised over i;
//  - backward weights: dw[o][i] = sum_n dy[n][o] x[n][i], vectorised over i, samples
//    summed in order.

#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {
namespace {

constexpr int kNt = 4;  // samples per forward tile
constexpr int kOt = 4;  // outputs per forward tile

template <int NT, int OT>
void dot_tile(int in, const float* x, const float* w, const float* b, float* y, int out, bool relu) {
  vf acc[NT][OT];
  for (int i = 0; i < NT; ++i)
    for (int j = 0; j < OT; ++j) acc[i][j] = vzero();
  int k = 0;
  for (; k + kLanes <= in; k += kLanes) {
    vf xv[NT], wv[OT];
    for (int i = 0; i < NT; ++i) xv[i] = vload(x + static_cast<int64_t>(i) * in + k);
    for (int j = 0; j < OT; ++j) wv[j] = vload(w + static_cast<int64_t>(j) * in + k);
    for (int i = 0; i < NT; ++i)
      for (int j = 0; j < OT; ++j) acc[i][j] = vfma(xv[i], wv[j], acc[i][j]);
  }
  if (k < in) {
    // The tail through zero-padded copies: a masked load here made GCC keep the
    // accumulators in memory for the whole loop above.
    const int lanes = in - k;
    alignas(64) float xt[NT][kLanes] = {}, wt[OT][kLanes] = {};
    for (int i = 0; i < NT; ++i)
      for (int l = 0; l < lanes; ++l) xt[i][l] = x[static_cast<int64_t>(i) * in + k + l];
    for (int j = 0; j < OT; ++j)
      for (int l = 0; l < lanes; ++l) wt[j][l] = w[static_cast<int64_t>(j) * in + k + l];
    vf xv[NT], wv[OT];
    for (int i = 0; i < NT; ++i) xv[i] = vload(xt[i]);
    for (int j = 0; j < OT; ++j) wv[j] = vload(wt[j]);
    for (int i = 0; i < NT; ++i)
      for (int j = 0; j < OT; ++j) acc[i][j] = vfma(xv[i], wv[j], acc[i][j]);
  }
  for (int i = 0; i < NT; ++i) {
    for (int j = 0; j < OT; ++j) {
      float v = vsum(acc[i][j]) + b[j];
      y[static_cast<int64_t>(i) * out + j] = relu && !(v > 0.0f) ? 0.0f : v;
    }
  }
}

template <int NT, int OT = kOt>
void dot_tile_o(int ot, int in, const float* x, const float* w, const float* b, float* y, int out, bool relu) {
  if constexpr (OT >= 1) {
    if (ot == OT) {
      dot_tile<NT, OT>(in, x, w, b, y, out, relu);
    } else {
      dot_tile_o<NT, OT - 1>(ot, in, x, w, b, y, out, relu);
    }
  }
}

template <int NT = kNt>
void dot_tile_n(int nt, int ot, int in, const float* x, const float* w, const float* b, float* y, int out, bool relu) {
  if constexpr (NT >= 1) {
    if (nt == NT) {
      dot_tile_o<NT>(ot, in, x, w, b, y, out, relu);
    } else {
      dot_tile_n<NT - 1>(nt, ot, in, x, w, b, y, out, relu);
    }
  }
}

// Backward data tile: NT samples x IV vectors of inputs.
constexpr int kBdIv = kLanes == 16 ? 4 : 2;
constexpr int kBdNt = (kVectorRegisters - kBdIv - 2) / kBdIv;

// PARTIAL: the last vector of inputs is partial and needs masked loads (kept out of the
// full tiles: a masked load in the loop makes GCC keep the accumulators in memory).
template <int NT, int IV, bool PARTIAL>
void backward_data_tile(const DenseArgs& s, const float* dy, const float* w, float* dx, int i0, int ilanes_last) {
  vf acc[NT][IV];
  for (int n = 0; n < NT; ++n)
    for (int v = 0; v < IV; ++v) acc[n][v] = vzero();
  for (int o = 0; o < s.out; ++o) {
    const float* wrow = w + static_cast<int64_t>(o) * s.in + i0;
    vf wv[IV];
    for (int v = 0; v < IV; ++v)
      wv[v] = PARTIAL && v == IV - 1 ? vload_n(wrow + v * kLanes, ilanes_last) : vload(wrow + v * kLanes);
    for (int n = 0; n < NT; ++n) {
      vf b = vset1(dy[static_cast<int64_t>(n) * s.out + o]);
      for (int v = 0; v < IV; ++v) acc[n][v] = vfma(b, wv[v], acc[n][v]);
    }
  }
  for (int n = 0; n < NT; ++n)
    for (int v = 0; v < IV; ++v)
      vstore_lanes(dx + static_cast<int64_t>(n) * s.in + i0 + v * kLanes, acc[n][v],
                   v == IV - 1 ? ilanes_last : kLanes);
}

template <int NT, int IV = kBdIv>
void backward_data_iv(int iv, const DenseArgs& s, const float* dy, const float* w, float* dx, int i0, int last) {
  if constexpr (IV >= 1) {
    if (iv == IV) {
      if (last == kLanes)
        backward_data_tile<NT, IV, false>(s, dy, w, dx, i0, last);
      else
        backward_data_tile<NT, IV, true>(s, dy, w, dx, i0, last);
    } else {
      backward_data_iv<NT, IV - 1>(iv, s, dy, w, dx, i0, last);
    }
  }
}

template <int NT = kBdNt>
void backward_data_nt(int nt, int iv, const DenseArgs& s, const float* dy, const float* w, float* dx, int i0,
                      int last) {
  if constexpr (NT >= 1) {
    if (nt == NT) {
      backward_data_iv<NT>(iv, s, dy, w, dx, i0, last);
    } else {
      backward_data_nt<NT - 1>(nt, iv, s, dy, w, dx, i0, last);
    }
  }
}

// Backward weights tile: OT outputs x IV vectors of inputs, summed over all samples.
constexpr int kBwIv = kBdIv;
constexpr int kBwOt = (kVectorRegisters - kBwIv - 2) / kBwIv;

template <int OT, int IV, bool PARTIAL>
void backward_weights_tile(const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int i0,
                           int ilanes_last) {
  vf acc[OT][IV];
  for (int o = 0; o < OT; ++o)
    for (int v = 0; v < IV; ++v) acc[o][v] = vzero();
  for (int n = 0; n < s.n; ++n) {
    const float* xrow = x + static_cast<int64_t>(n) * s.in + i0;
    const float* drow = dy + static_cast<int64_t>(n) * s.out + o0;
    vf xv[IV];
    for (int v = 0; v < IV; ++v)
      xv[v] = PARTIAL && v == IV - 1 ? vload_n(xrow + v * kLanes, ilanes_last) : vload(xrow + v * kLanes);
    for (int o = 0; o < OT; ++o) {
      vf b = vset1(drow[o]);
      for (int v = 0; v < IV; ++v) acc[o][v] = vfma(b, xv[v], acc[o][v]);
    }
  }
  for (int o = 0; o < OT; ++o)
    for (int v = 0; v < IV; ++v)
      vstore_lanes(dw + static_cast<int64_t>(o0 + o) * s.in + i0 + v * kLanes, acc[o][v],
                   v == IV - 1 ? ilanes_last : kLanes);
}

template <int OT, int IV = kBwIv>
void backward_weights_iv(int iv, const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int i0,
                         int last) {
  if constexpr (IV >= 1) {
    if (iv == IV) {
      if (last == kLanes)
        backward_weights_tile<OT, IV, false>(s, x, dy, dw, o0, i0, last);
      else
        backward_weights_tile<OT, IV, true>(s, x, dy, dw, o0, i0, last);
    } else {
      backward_weights_iv<OT, IV - 1>(iv, s, x, dy, dw, o0, i0, last);
    }
  }
}

template <int OT = kBwOt>
void backward_weights_ot(int ot, int iv, const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int i0,
                         int last) {
  if constexpr (OT >= 1) {
    if (ot == OT) {
      backward_weights_iv<OT>(iv, s, x, dy, dw, o0, i0, last);
    } else {
      backward_weights_ot<OT - 1>(ot, iv, s, x, dy, dw, o0, i0, last);
    }
  }
}

// Splits [i0, i1) into tiles of at most max_vectors vectors; calls fn(start, vectors, last_lanes).
template <typename Fn>
void for_each_lane_tile(int i0, int i1, int max_vectors, Fn&& fn) {
  for (int i = i0; i < i1; i += max_vectors * kLanes) {
    int count = imin(max_vectors * kLanes, i1 - i);
    int vectors = (count + kLanes - 1) / kLanes;
    fn(i, vectors, count - (vectors - 1) * kLanes);
  }
}

}  // namespace

void dense_forward_block(const DenseArgs& s, const float* x, const float* w, const float* b, float* y, bool relu,
                         int n0, int n1, int o0, int o1) {
  for (int n = n0; n < n1; n += kNt) {
    int nt = imin(kNt, n1 - n);
    for (int o = o0; o < o1; o += kOt) {
      int ot = imin(kOt, o1 - o);
      dot_tile_n(nt, ot, s.in, x + static_cast<int64_t>(n) * s.in, w + static_cast<int64_t>(o) * s.in, b + o,
                 y + static_cast<int64_t>(n) * s.out + o, s.out, relu);
    }
  }
}

void dense_backward_data_block(const DenseArgs& s, const float* dy, const float* w, float* dx, int n0, int n1, int i0,
                               int i1) {
  for (int n = n0; n < n1; n += kBdNt) {
    int nt = imin(kBdNt, n1 - n);
    for_each_lane_tile(i0, i1, kBdIv, [&](int i, int vectors, int last) {
      backward_data_nt(nt, vectors, s, dy + static_cast<int64_t>(n) * s.out, w, dx + static_cast<int64_t>(n) * s.in, i,
                       last);
    });
  }
}

void dense_backward_weights_block(const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int o1,
                                  int i0, int i1) {
  for (int o = o0; o < o1; o += kBwOt) {
    int ot = imin(kBwOt, o1 - o);
    for_each_lane_tile(i0, i1, kBwIv, [&](int i, int vectors, int last) {
      backward_weights_ot(ot, vectors, s, x, dy, dw, o, i, last);
    });
  }
}

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
