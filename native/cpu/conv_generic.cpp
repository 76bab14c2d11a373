// The generic convolution of the CPU backend: any odd kernel size (the network takes 3 and 5;
// 3 x 3 layers use the tuned kernels of conv3x3_*_kernels.cpp instead). Straight loops over
// the taps, vectorised by the compiler over the output (forward, weights) or input (backward
// data) channels. conv_generic_window computes any window of the output with the same
// sequence of operations per element, so the Algorithm-2 sweep's windows equal the full
// layer bit for bit.
#include "conv_generic.h"

#include <algorithm>
#include <vector>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

void pack_conv_weights_generic(const float* weight, int out_c, int in_c, int ks, int k_pad, float* packed) {
  const int taps = ks * ks;
  for (int tap = 0; tap < taps; ++tap)
    for (int c = 0; c < in_c; ++c) {
      float* row = packed + (static_cast<size_t>(tap) * in_c + c) * k_pad;
      for (int k = 0; k < k_pad; ++k)
        row[k] = k < out_c ? weight[(static_cast<size_t>(k) * in_c + c) * taps + tap] : 0.0f;
    }
}

void conv_generic_window(const ConvWindow& a, int ks, int image, int oy0, int oy1, int ox0, int ox1) {
  const int out_h = a.in_h - ks + 1, out_w = a.in_w - ks + 1;
  const float* x_img = a.x + static_cast<int64_t>(image) * a.in_h * a.in_w * a.in_c;
  float* y_img = a.y + static_cast<int64_t>(image) * out_h * out_w * a.out_c;
  std::vector<float> acc(a.k_pad);
  for (int oy = oy0; oy < oy1; ++oy)
    for (int ox = ox0; ox < ox1; ++ox) {
      std::copy(a.packed_b, a.packed_b + a.k_pad, acc.begin());
      for (int ky = 0; ky < ks; ++ky)
        for (int kx = 0; kx < ks; ++kx) {
          const float* xp = x_img + (static_cast<int64_t>(oy + ky) * a.in_w + ox + kx) * a.in_c;
          const float* wt = a.packed_w + static_cast<size_t>(ky * ks + kx) * a.in_c * a.k_pad;
          for (int c = 0; c < a.in_c; ++c) {
            const float v = xp[c];
            const float* w = wt + static_cast<size_t>(c) * a.k_pad;
            for (int k = 0; k < a.k_pad; ++k) acc[k] += v * w[k];
          }
        }
      float* y = y_img + (static_cast<int64_t>(oy) * out_w + ox) * a.out_c;
      for (int k = 0; k < a.out_c; ++k) y[k] = a.relu && acc[k] < 0.0f ? 0.0f : acc[k];
    }
}

Status conv_generic_forward(ThreadPool& pool, const Conv3x3Shape& s, const float* x, const float* weight,
                            const float* bias, float* y, bool relu) {
  const int k_pad = round_up(s.out_c, 16);
  std::vector<float> packed_w(static_cast<size_t>(s.k) * s.k * s.in_c * k_pad), packed_b(k_pad, 0.0f);
  pack_conv_weights_generic(weight, s.out_c, s.in_c, s.k, k_pad, packed_w.data());
  std::copy(bias, bias + s.out_c, packed_b.begin());
  const ConvWindow a{s.in_h, s.in_w, s.in_c, s.out_c, k_pad, x, packed_w.data(), packed_b.data(), y, relu};
  const int out_h = s.out_h(), out_w = s.out_w();
  pool.parallel_for(static_cast<int64_t>(s.n) * out_h, [&](int64_t task) {
    const int image = static_cast<int>(task / out_h), oy = static_cast<int>(task % out_h);
    conv_generic_window(a, s.k, image, oy, oy + 1, 0, out_w);
  });
  return Status::Ok();
}

Status conv_generic_backward_data(ThreadPool& pool, const Conv3x3Shape& s, const float* dy, const float* weight,
                                  float* dx) {
  // dx[y][x][c] = sum over (ky, kx, k) of dy[y - ky][x - kx][k] * w[k][c][ky][kx], the taps
  // inside dy only; weights as wt[(ky * ks + kx) * out_c + k][c].
  const int ks = s.k, taps = ks * ks, out_h = s.out_h(), out_w = s.out_w();
  std::vector<float> wt(static_cast<size_t>(taps) * s.out_c * s.in_c);
  for (int tap = 0; tap < taps; ++tap)
    for (int k = 0; k < s.out_c; ++k)
      for (int c = 0; c < s.in_c; ++c)
        wt[(static_cast<size_t>(tap) * s.out_c + k) * s.in_c + c] =
            weight[(static_cast<size_t>(k) * s.in_c + c) * taps + tap];
  pool.parallel_for(static_cast<int64_t>(s.n) * s.in_h, [&](int64_t task) {
    const int image = static_cast<int>(task / s.in_h), row = static_cast<int>(task % s.in_h);
    const float* dy_img = dy + static_cast<int64_t>(image) * out_h * out_w * s.out_c;
    std::vector<float> acc(s.in_c);
    for (int col = 0; col < s.in_w; ++col) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int ky = 0; ky < ks; ++ky) {
        const int oy = row - ky;
        if (oy < 0 || oy >= out_h) continue;
        for (int kx = 0; kx < ks; ++kx) {
          const int ox = col - kx;
          if (ox < 0 || ox >= out_w) continue;
          const float* d = dy_img + (static_cast<int64_t>(oy) * out_w + ox) * s.out_c;
          const float* w = wt.data() + static_cast<size_t>(ky * ks + kx) * s.out_c * s.in_c;
          for (int k = 0; k < s.out_c; ++k) {
            const float v = d[k];
            const float* wk = w + static_cast<size_t>(k) * s.in_c;
            for (int c = 0; c < s.in_c; ++c) acc[c] += v * wk[c];
          }
        }
      }
      std::copy(acc.begin(), acc.end(), dx + ((static_cast<int64_t>(image) * s.in_h + row) * s.in_w + col) * s.in_c);
    }
  });
  return Status::Ok();
}

Status conv_generic_backward_weights(ThreadPool& pool, const Conv3x3Shape& s, const float* x, const float* dy,
                                     float* dweight, float* dbias) {
  // One task per (tap, input channel) row of the gradient, and one for the bias: each sums
  // over the whole batch in a fixed order, so the result does not depend on the threads.
  const int ks = s.k, taps = ks * ks, out_h = s.out_h(), out_w = s.out_w();
  const int rows = taps * s.in_c;
  pool.parallel_for(static_cast<int64_t>(rows) + 1, [&](int64_t task) {
    std::vector<float> acc(s.out_c, 0.0f);
    if (task == rows) {
      for (int n = 0; n < s.n; ++n)
        for (int p = 0; p < out_h * out_w; ++p) {
          const float* d = dy + (static_cast<int64_t>(n) * out_h * out_w + p) * s.out_c;
          for (int k = 0; k < s.out_c; ++k) acc[k] += d[k];
        }
      std::copy(acc.begin(), acc.end(), dbias);
      return;
    }
    const int tap = static_cast<int>(task) / s.in_c, c = static_cast<int>(task) % s.in_c;
    const int ky = tap / ks, kx = tap % ks;
    for (int n = 0; n < s.n; ++n)
      for (int oy = 0; oy < out_h; ++oy)
        for (int ox = 0; ox < out_w; ++ox) {
          const float v = x[((static_cast<int64_t>(n) * s.in_h + oy + ky) * s.in_w + ox + kx) * s.in_c + c];
          const float* d = dy + ((static_cast<int64_t>(n) * out_h + oy) * out_w + ox) * s.out_c;
          for (int k = 0; k < s.out_c; ++k) acc[k] += v * d[k];
        }
    for (int k = 0; k < s.out_c; ++k) dweight[(static_cast<size_t>(k) * s.in_c + c) * taps + tap] = acc[k];
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
