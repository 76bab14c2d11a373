// conv3x3_backward_data: the gradient w.r.t. the input is the 'full' convolution of dy
// with the flipped kernel, weights packed as packed[(ky * 3 + kx) * out_c + k][c] =
// w[k][c][2 - ky][2 - kx]. The forward kernel's tiles compute it straight from dy, each
// output summing only the taps that fall inside dy: a zero border would cost 15% (conv2),
// 31% (conv3) and 36% (conv4) more multiply-adds, all of them by zero. The single-channel
// case (conv1, only needed for input gradients) keeps the simple padded loop.
#include <cstring>

#include "conv_generic.h"
#include "cpu_backend.h"
#include "scratch.h"
#include "winograd_f2x2_3x3.h"

namespace tempered {
namespace cpu {

void pack_conv_weights_flipped(const float* weight, int out_c, int in_c, int c_pad, float* packed) {
  for (int tap = 0; tap < 9; ++tap) {
    const int flipped = 8 - tap;  // (2 - ky) * 3 + (2 - kx)
    for (int k = 0; k < out_c; ++k) {
      float* row = packed + (static_cast<size_t>(tap) * out_c + k) * c_pad;
      for (int c = 0; c < c_pad; ++c)
        row[c] = c < in_c ? weight[(static_cast<size_t>(k) * in_c + c) * 9 + flipped] : 0.0f;
    }
  }
}

namespace {

// dst[n][h + 4][w + 4][c] = dy with a zero border of 2 (h, w: dy's size).
void pad_by_two(ThreadPool& pool, int n, int h, int w, int c, const float* dy, float* dst) {
  const int ph = h + 4, pw = w + 4;
  pool.parallel_for(n, [&](int64_t image) {
    const float* src = dy + image * h * w * c;
    float* out = dst + image * ph * pw * c;
    std::memset(out, 0, sizeof(float) * 2 * pw * c);
    for (int y = 0; y < h; ++y) {
      float* row = out + (static_cast<size_t>(y) + 2) * pw * c;
      std::memset(row, 0, sizeof(float) * 2 * c);
      std::memcpy(row + 2 * c, src + static_cast<size_t>(y) * w * c, sizeof(float) * w * c);
      std::memset(row + (w + 2) * c, 0, sizeof(float) * 2 * c);
    }
    std::memset(out + static_cast<size_t>(h + 2) * pw * c, 0, sizeof(float) * 2 * pw * c);
  });
}

}  // namespace

Status CpuBackend::conv3x3_backward_data(const Conv3x3Shape& s, const float* dy, const float* weight, float* dx) {
  if (s.k != 3) return conv_generic_backward_data(pool(), s, dy, weight, dx);
  if (s.fast && winograd_backward_data_chosen(s))
    return winograd_f2x2_3x3_backward_data(pool(), *kernels_, s, dy, weight, dx);
  const int out_h = s.out_h(), out_w = s.out_w();
  const KernelTable& kt = *kernels_;

  if (s.in_c == 1) {
    const int ph = out_h + 4, pw = out_w + 4;  // = in_h + 2, in_w + 2
    float* padded = scratch(kScratchPadded, static_cast<size_t>(s.n) * ph * pw * s.out_c);
    float* flipped = scratch(kScratchPackedWeights, static_cast<size_t>(9) * s.out_c);
    if (padded == nullptr || flipped == nullptr) return Status::OutOfMemory("conv3x3_backward_data: scratch");
    pad_by_two(pool(), s.n, out_h, out_w, s.out_c, dy, padded);
    for (int tap = 0; tap < 9; ++tap)
      for (int k = 0; k < s.out_c; ++k) flipped[tap * s.out_c + k] = weight[static_cast<size_t>(k) * 9 + (8 - tap)];
    pool().parallel_for(s.n, [&](int64_t image) {
      kt.conv3x3_backward_data_1ch(s.in_h, s.in_w, s.out_c, padded, flipped, dx, static_cast<int>(image));
    });
    return Status::Ok();
  }

  const int c_pad = round_up(s.in_c, 16);
  float* packed_w = scratch(kScratchPackedWeights, static_cast<size_t>(9) * s.out_c * c_pad);
  if (packed_w == nullptr) return Status::OutOfMemory("conv3x3_backward_data: scratch");
  pack_conv_weights_flipped(weight, s.out_c, s.in_c, c_pad, packed_w);
  ConvFull a{out_h, out_w, s.out_c, s.in_c, c_pad, dy, packed_w, dx};
  pool().parallel_for(static_cast<int64_t>(s.n) * s.in_h, [&](int64_t task) {
    kt.conv3x3_full_row(a, static_cast<int>(task / s.in_h), static_cast<int>(task % s.in_h));
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
