// winograd_f2x2_3x3: the kernel transform U = G g G^T (in float64, rounded once), the tile
// blocks as thread tasks, and the choice of algorithm per shape. The arithmetic per block
// is in winograd_f2x2_3x3_kernels.cpp.
#include "winograd_f2x2_3x3.h"

#include <cstdlib>
#include <cstring>

#include "cpu_backend.h"
#include "scratch.h"
#include "thread_pool.h"

namespace tempered {
namespace cpu {

namespace {

// Tiles per task: a block's transformed inputs and products (16 x 32 x channels floats
// each, 256 KB at 128 channels) stay in the core's L2 cache between the three stages.
constexpr int kTilesPerBlock = 32;
constexpr int kMinChannels = 32;

bool forced_direct() {
  static const bool direct = [] {
    const char* v = std::getenv("TEMPERED_CONV");
    return v != nullptr && std::strcmp(v, "direct") == 0;
  }();
  return direct;
}

// u[xi][r][o] (row length k_pad, zero beyond `outs`) = (G g G^T)[xi] of the 3x3 kernel
// g = tap(o, r, ky, kx), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
// Parallel over r: 128 x 128 channels is 1.6 million float64 operations.
template <typename Tap>
void transform_kernel(ThreadPool& pool, int reduce, int outs, int k_pad, Tap tap, float* u) {
  static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  pool.parallel_for(reduce, [&](int64_t task) {
    const int r = static_cast<int>(task);
    for (int o = 0; o < k_pad; ++o) {
      if (o >= outs) {
        for (int xi = 0; xi < 16; ++xi) u[(static_cast<size_t>(xi) * reduce + r) * k_pad + o] = 0.0f;
        continue;
      }
      double gg[4][3];  // G g
      for (int i = 0; i < 4; ++i)
        for (int kx = 0; kx < 3; ++kx) {
          double acc = 0;
          for (int ky = 0; ky < 3; ++ky) acc += G[i][ky] * tap(o, r, ky, kx);
          gg[i][kx] = acc;
        }
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
          double acc = 0;
          for (int kx = 0; kx < 3; ++kx) acc += gg[i][kx] * G[j][kx];
          u[(static_cast<size_t>(i * 4 + j) * reduce + r) * k_pad + o] = static_cast<float>(acc);
        }
    }
  });
}

// Runs the tile blocks of `a` on the pool; blocks are fixed by the shape, not the threads.
Status run_blocks(ThreadPool& pool, const KernelTable& kt, int n, const WinogradArgs& a) {
  const int64_t tiles = static_cast<int64_t>(n) * a.tiles_h * a.tiles_w;
  const int64_t blocks = (tiles + kTilesPerBlock - 1) / kTilesPerBlock;
  bool out_of_memory = false;
  pool.parallel_for(blocks, [&](int64_t block) {
    const int64_t tile0 = block * kTilesPerBlock;
    const int count = static_cast<int>(tiles - tile0 < kTilesPerBlock ? tiles - tile0 : kTilesPerBlock);
    float* v = scratch(kScratchWinogradIn, static_cast<size_t>(16) * (kTilesPerBlock * a.c_pad + kWinogradPlanePad));
    float* m = scratch(kScratchWinogradOut, static_cast<size_t>(16) * (kTilesPerBlock * a.k_pad + kWinogradPlanePad));
    if (v == nullptr || m == nullptr) {
      out_of_memory = true;  // only ever set to true: a benign race
      return;
    }
    kt.winograd_f2x2_block(a, tile0, count, v, m);
  });
  return out_of_memory ? Status::OutOfMemory("winograd_f2x2_3x3: scratch") : Status::Ok();
}

}  // namespace

bool winograd_forward_chosen(const Conv3x3Shape& s) {
  return !forced_direct() && s.k == 3 && s.in_c >= kMinChannels && s.out_c >= kMinChannels;
}

bool winograd_backward_data_chosen(const Conv3x3Shape& s) {
  // The product reduces over the layer's output channels and produces its input channels.
  return !forced_direct() && s.k == 3 && s.out_c >= kMinChannels && s.in_c >= kMinChannels;
}

std::string conv3x3_kernels_summary() {
  if (forced_direct()) return "conv3x3: direct (TEMPERED_CONV=direct)";
  return "conv3x3 training: Winograd F(2x2,3x3) where in and out channels >= 32";
}

Status winograd_f2x2_3x3_forward(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* x,
                                 const float* weight, const float* bias, float* y, bool relu) {
  const int k_pad = round_up(s.out_c, 16);
  float* u = scratch(kScratchPackedWeights, static_cast<size_t>(16) * s.in_c * k_pad);
  float* b = scratch(kScratchPackedBias, k_pad);
  if (u == nullptr || b == nullptr) return Status::OutOfMemory("winograd_f2x2_3x3_forward: scratch");
  const int in_c = s.in_c;
  transform_kernel(
      pool, s.in_c, s.out_c, k_pad,
      [&](int o, int r, int ky, int kx) { return weight[((static_cast<size_t>(o) * in_c + r) * 3 + ky) * 3 + kx]; }, u);
  for (int k = 0; k < k_pad; ++k) b[k] = k < s.out_c ? bias[k] : 0.0f;
  const int out_h = s.out_h(), out_w = s.out_w();
  WinogradArgs a{s.in_h,  s.in_w, s.in_c,          round_up(s.in_c, 16), 0, out_h, out_w,
                 s.out_c, k_pad,  (out_h + 1) / 2, (out_w + 1) / 2,      x, u,     b,
                 y,       relu};
  return run_blocks(pool, kt, s.n, a);
}

Status winograd_f2x2_3x3_backward_data(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* dy,
                                       const float* weight, float* dx) {
  // dx = the 'valid' convolution of dy padded by 2 with g[c][k][ky][kx] = w[k][c][2 - ky][2 - kx].
  const int c_pad = round_up(s.in_c, 16);
  float* u = scratch(kScratchPackedWeights, static_cast<size_t>(16) * s.out_c * c_pad);
  if (u == nullptr) return Status::OutOfMemory("winograd_f2x2_3x3_backward_data: scratch");
  const int in_c = s.in_c;
  transform_kernel(
      pool, s.out_c, s.in_c, c_pad,
      [&](int c, int k, int ky, int kx) {
        return weight[((static_cast<size_t>(k) * in_c + c) * 3 + (2 - ky)) * 3 + (2 - kx)];
      },
      u);
  const int out_h = s.out_h(), out_w = s.out_w();
  WinogradArgs a{out_h,  out_w, s.out_c,          round_up(s.out_c, 16), 2,  s.in_h, s.in_w,
                 s.in_c, c_pad, (s.in_h + 1) / 2, (s.in_w + 1) / 2,      dy, u,      nullptr,
                 dx,     false};
  return run_blocks(pool, kt, s.n, a);
}

}  // namespace cpu
}  // namespace tempered
