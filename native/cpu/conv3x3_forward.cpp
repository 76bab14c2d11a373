// conv3x3_forward: y = ReLU?(conv(x, w) + b), NHWC, tasks of whole output rows.
#include <algorithm>

#include "conv_generic.h"
#include "cpu_backend.h"
#include "scratch.h"
#include "winograd_f2x2_3x3.h"

namespace tempered {
namespace cpu {

namespace {
constexpr int64_t kMinTaskMultiplyAdds = 64 * 1024;
}  // namespace

void pack_conv_weights(const float* weight, int out_c, int in_c, int k_pad, float* packed) {
  // packed[(ky * 3 + kx) * in_c + c][k] = weight[k][c][ky][kx]
  for (int tap = 0; tap < 9; ++tap)
    for (int c = 0; c < in_c; ++c) {
      float* row = packed + (static_cast<size_t>(tap) * in_c + c) * k_pad;
      for (int k = 0; k < k_pad; ++k) row[k] = k < out_c ? weight[(static_cast<size_t>(k) * in_c + c) * 9 + tap] : 0.0f;
    }
}

bool direct_conv_window(const Conv3x3Shape& s, const float* x, const float* weight, const float* bias, float* y,
                        bool relu, ConvWindow* out) {
  const int k_pad = round_up(s.out_c, 16);
  float* packed_w = scratch(kScratchPackedWeights, static_cast<size_t>(9) * s.in_c * k_pad);
  float* packed_b = scratch(kScratchPackedBias, k_pad);
  if (packed_w == nullptr || packed_b == nullptr) return false;
  pack_conv_weights(weight, s.out_c, s.in_c, k_pad, packed_w);
  for (int k = 0; k < k_pad; ++k) packed_b[k] = k < s.out_c ? bias[k] : 0.0f;
  *out = ConvWindow{s.in_h, s.in_w, s.in_c, s.out_c, k_pad, x, packed_w, packed_b, y, relu};
  return true;
}

bool CpuBackend::conv3x3_pools(const Conv3x3Shape& s) const { return s.k == 3 && winograd_forward_pools(s); }

Status CpuBackend::conv3x3_forward(const Conv3x3Shape& s, const float* x, const float* weight, const float* bias,
                                   float* y, bool relu) {
  if (s.pool2x2) {
    if (!conv3x3_pools(s)) return Status::InvalidArgument("conv3x3_forward: no fused max-pool for this shape");
    return winograd_f2x2_3x3_forward(pool(), *kernels_, s, x, weight, bias, y, relu);
  }
  if (s.k != 3) return conv_generic_forward(pool(), s, x, weight, bias, y, relu);
  if (s.fast && winograd_forward_chosen(s))
    return winograd_f2x2_3x3_forward(pool(), *kernels_, s, x, weight, bias, y, relu);
  ConvWindow a{};
  if (!direct_conv_window(s, x, weight, bias, y, relu, &a)) return Status::OutOfMemory("conv3x3_forward: scratch");
  const int out_h = s.out_h(), out_w = s.out_w();
  const KernelTable& kt = *kernels_;
  // Tasks of whole rows, at least kMinTaskMultiplyAdds each: handing out a task costs an
  // atomic on a cache line the threads share, which a row of conv1 (1 input channel, 7.5 k
  // multiply-adds) does not repay; with one row per task, 2 threads ran conv1 at half the
  // speed of 1. The rows a task takes never change a value.
  const int64_t per_row = static_cast<int64_t>(out_w) * s.out_c * 9 * s.in_c;
  const int rows_per_task = static_cast<int>(std::min<int64_t>(out_h, (kMinTaskMultiplyAdds + per_row - 1) / per_row));
  const int tasks_per_image = (out_h + rows_per_task - 1) / rows_per_task;
  pool().parallel_for(static_cast<int64_t>(s.n) * tasks_per_image, [&](int64_t task) {
    const int image = static_cast<int>(task / tasks_per_image);
    const int oy0 = static_cast<int>(task % tasks_per_image) * rows_per_task;
    kt.conv3x3_window(a, image, oy0, std::min(out_h, oy0 + rows_per_task), 0, out_w);
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
