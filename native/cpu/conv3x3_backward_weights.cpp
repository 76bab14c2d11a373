// conv3x3_backward_weights: dW and db summed over the batch. The batch is cut into
// fixed chunks of images (independent of the thread count); each task computes one
// chunk's partial gradient for one tile of (tap, input channels, output channels), and
// the partials are added in chunk order, so the result is the same on any number of
// threads.
#include <algorithm>
#include <cstring>

#include "conv_generic.h"
#include "cpu_backend.h"
#include "scratch.h"

namespace tempered {
namespace cpu {

namespace {
constexpr int kImagesPerChunk = 8;
constexpr int kChannelsPerTile = 12;  // the kernel blocks further to fit its registers
constexpr int kOutPerTile = 64;
}  // namespace

Status CpuBackend::conv3x3_backward_weights(const Conv3x3Shape& s, const float* x, const float* dy, float* dweight,
                                            float* dbias) {
  if (s.k != 3) return conv_generic_backward_weights(pool(), s, x, dy, dweight, dbias);
  const int k_pad = round_up(s.out_c, kOutPerTile);
  const int rows = 9 * s.in_c;
  const int chunks = (s.n + kImagesPerChunk - 1) / kImagesPerChunk;
  const int c_tiles = (s.in_c + kChannelsPerTile - 1) / kChannelsPerTile;
  const int k_tiles = k_pad / kOutPerTile;
  // One input channel: one tile covers all 9 taps (the kernel's tap = -1).
  const bool all_taps = s.in_c == 1;
  const int tiles = all_taps ? k_tiles : 9 * c_tiles * k_tiles;
  const size_t chunk_floats = static_cast<size_t>(rows) * k_pad + k_pad;  // weights, then bias
  float* partials = scratch(kScratchPartials, chunk_floats * chunks);
  if (partials == nullptr) return Status::OutOfMemory("conv3x3_backward_weights: scratch");

  const int out_h = s.out_h(), out_w = s.out_w();
  ConvWeightGrad a{s.in_h, s.in_w, s.in_c, s.out_c, k_pad, x, dy};
  const KernelTable& kt = *kernels_;
  // Tasks: every (chunk, tile), then one bias task per chunk.
  pool().parallel_for(static_cast<int64_t>(chunks) * (tiles + 1), [&](int64_t task) {
    const int chunk = static_cast<int>(task / (tiles + 1)), tile = static_cast<int>(task % (tiles + 1));
    const int n0 = chunk * kImagesPerChunk, n1 = std::min(s.n, n0 + kImagesPerChunk);
    float* part = partials + chunk * chunk_floats;
    if (tile == tiles) {
      float* db = part + static_cast<size_t>(rows) * k_pad;
      std::fill(db, db + k_pad, 0.0f);
      for (int n = n0; n < n1; ++n)
        for (int p = 0; p < out_h * out_w; ++p) {
          const float* d = dy + (static_cast<size_t>(n) * out_h * out_w + p) * s.out_c;
          for (int k = 0; k < s.out_c; ++k) db[k] += d[k];
        }
      return;
    }
    const int tap = all_taps ? -1 : tile / (c_tiles * k_tiles);
    const int c0 = all_taps ? 0 : (tile / k_tiles) % c_tiles * kChannelsPerTile;
    const int k0 = tile % k_tiles * kOutPerTile;
    const int c_count = std::min(kChannelsPerTile, s.in_c - c0);
    const int k_count = std::min(kOutPerTile, s.out_c - k0);
    float* out = part + (static_cast<size_t>(all_taps ? 0 : tap) * s.in_c + c0) * k_pad + k0;
    kt.conv3x3_weight_grad_tile(a, n0, n1, tap, c0, c_count, k0, k_count, out);
  });

  // Sum the chunks in order and unpack to [k][c][3][3]; parallel over output channels.
  pool().parallel_for(s.out_c, [&](int64_t k) {
    for (int r = 0; r < rows; ++r) {
      float sum = partials[static_cast<size_t>(r) * k_pad + k];
      for (int chunk = 1; chunk < chunks; ++chunk)
        sum += partials[chunk * chunk_floats + static_cast<size_t>(r) * k_pad + k];
      const int tap = r / s.in_c, c = r % s.in_c;
      dweight[(static_cast<size_t>(k) * s.in_c + c) * 9 + tap] = sum;
    }
    float b = partials[static_cast<size_t>(rows) * k_pad + k];
    for (int chunk = 1; chunk < chunks; ++chunk)
      b += partials[chunk * chunk_floats + static_cast<size_t>(rows) * k_pad + k];
    dbias[k] = b;
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
