// conv3x3_pair_forward: a direct 3x3 convolution (+ ReLU) into a Winograd one (+ ReLU, +
// max-pool) at inference, in tasks of one image's band of the second's tile rows. Each task
// computes the rows of the first's output its band reads (two more than it owns: the
// neighbouring bands recompute them) into the thread's scratch, where they stay in the L1
// and L2 caches, and runs the band's Winograd tiles on them. conv1 of the paper's network
// writes 86 KB an image otherwise, most of its time. Both kernels compute each element by
// the same fixed sequence of operations wherever it falls, so the result equals the two
// operations run one after the other bit for bit.
#include <algorithm>

#include "cpu_backend.h"
#include "scratch.h"
#include "thread_pool.h"
#include "winograd_f2x2_3x3.h"

namespace tempered {
namespace cpu {

bool CpuBackend::conv3x3_pairs(const Conv3x3Shape& first, const Conv3x3Shape& second) const {
  const bool first_direct = first.k == 3 && !first.pool2x2 && !(first.fast && winograd_forward_chosen(first));
  const bool second_winograd =
      second.k == 3 && second.fast && winograd_forward_chosen(second) && (!second.pool2x2 || conv3x3_pools(second));
  const bool chained =
      first.n == second.n && first.out_h() == second.in_h && first.out_w() == second.in_w && first.out_c == second.in_c;
  // Whole tile rows per band (at most 31 tiles a row: inputs are at most 64 wide).
  const int tiles_w = (second.out_w() + 1) / 2;
  return first_direct && second_winograd && chained && tiles_w <= kWinogradBandTiles;
}

Status CpuBackend::conv3x3_pair_forward(const Conv3x3Shape& first, const float* weight1, const float* bias1, bool relu1,
                                        const Conv3x3Shape& second, const float* weight2, const float* bias2,
                                        bool relu2, const float* x, float* y) {
  if (!conv3x3_pairs(first, second)) return Status::InvalidArgument("conv3x3_pair_forward: not a pair it fuses");
  // The first convolution's packed weights, as conv3x3_forward packs them.
  ConvWindow whole{};
  if (!direct_conv_window(first, x, weight1, bias1, nullptr, relu1, &whole))
    return Status::OutOfMemory("conv3x3_pair_forward: scratch");
  const WinogradKernel* u = winograd_forward_cached_kernel(pool(), second, weight2, bias2);
  if (u == nullptr) return Status::OutOfMemory("conv3x3_pair_forward: kernel");
  const WinogradArgs a = winograd_forward_args(second, nullptr, *u, y, relu2);

  const int mid_h = first.out_h(), mid_w = first.out_w(), mid_c = first.out_c;
  const int band = std::max(1, kWinogradBandTiles / a.tiles_w);  // tile rows per task
  const int bands = (a.tiles_h + band - 1) / band;
  const size_t in_image = static_cast<size_t>(first.in_h) * first.in_w * first.in_c;
  const KernelTable& kt = *kernels_;
  bool failed = false;
  pool().parallel_for(static_cast<int64_t>(first.n) * bands, [&](int64_t task) {
    const int image = static_cast<int>(task / bands);
    const int ty0 = static_cast<int>(task % bands) * band, ty1 = std::min(a.tiles_h, ty0 + band);
    // Rows [r0, r1) of the first's output: all the band's tiles read (4 rows from 2 ty).
    const int r0 = 2 * ty0, r1 = std::min(mid_h, 2 * ty1 + 2);
    float* rows = scratch(kScratchPairRows, static_cast<size_t>(r1 - r0) * mid_w * mid_c);
    if (rows == nullptr) {
      failed = true;  // only ever set to true: a benign race
      return;
    }
    // The first convolution over the input rows [r0, r1 + 2), as an image of its own.
    ConvWindow w = whole;
    w.in_h = r1 - r0 + 2;
    w.x = x + image * in_image + static_cast<size_t>(r0) * first.in_w * first.in_c;
    w.y = rows;
    kt.conv3x3_window(w, 0, 0, r1 - r0, 0, mid_w);
    if (!winograd_forward_band(kt, a, image, ty0, ty1, rows, r1 - r0).ok()) failed = true;
  });
  return failed ? Status::OutOfMemory("conv3x3_pair_forward: scratch") : Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
