// winograd_f2x2_3x3: the kernel transform U = G g G^T (in float64, rounded once, kept per
// thread for unchanged weights), the tile blocks as thread tasks, the sweep's tile windows,
// and the choice of algorithm per shape. The arithmetic per block is in
// winograd_f2x2_3x3_kernels.cpp.
#include "winograd_f2x2_3x3.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "cpu_backend.h"
#include "scratch.h"
#include "thread_pool.h"

namespace tempered {
namespace cpu {

namespace {

// Tiles per task: a block's transformed inputs and products (16 x 32 x channels floats
// each, 256 KB at 128 channels) stay in the core's L2 cache between the three stages.
// The block size never changes a value (each tile is computed on its own), so small
// batches may use smaller blocks to keep every thread busy.
constexpr int kTilesPerBlock = 32;
constexpr int kMinTilesPerBlock = 4;
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

// 64-byte-aligned room for `floats` floats inside `storage` (the product kernel's loads of
// U rows would otherwise straddle cache lines).
float* aligned_room(std::vector<float>* storage, size_t floats) {
  storage->resize(floats + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(storage->data());
  return reinterpret_cast<float*>((p + 63) & ~static_cast<uintptr_t>(63));
}

// Fills k with the kernel transformed for a product reducing over `reduce` channels into
// `outs` (tap(o, r, ky, kx) reads the 3x3 kernel) and the bias padded to k_pad (zeros when
// bias is null). Throws std::bad_alloc.
template <typename Tap>
void fill_kernel(ThreadPool& pool, int reduce, int outs, Tap tap, const float* bias, WinogradKernel* k) {
  k->k_pad = round_up(outs, 16);
  const size_t u_floats = static_cast<size_t>(16) * reduce * k->k_pad;
  k->u = aligned_room(&k->storage, u_floats + k->k_pad);
  k->bias = k->u + u_floats;
  transform_kernel(pool, reduce, outs, k->k_pad, tap, k->u);
  for (int o = 0; o < k->k_pad; ++o) k->bias[o] = bias != nullptr && o < outs ? bias[o] : 0.0f;
}

// The transformed kernels of the last few convolutions this thread ran, each beside the
// weights (and bias) it was made from. A call whose weights are bit for bit the same reuses
// it: inference runs the same layers over and over, and at batch 1 the float64 transform
// costs more than the convolution. Training changes the weights every step, so it
// transforms every time (the comparison stops at the first changed weight).
struct CachedKernel {
  bool backward = false;
  int reduce = 0, outs = 0;
  std::vector<float> source;
  WinogradKernel kernel;
  uint64_t used = 0;
};
constexpr size_t kCachedKernels = 8;
thread_local std::vector<CachedKernel> t_cached;
thread_local uint64_t t_clock = 0;

bool same_source(const CachedKernel& e, bool backward, int reduce, int outs, const float* weight, size_t weights,
                 const float* bias, size_t biases) {
  return e.backward == backward && e.reduce == reduce && e.outs == outs && e.source.size() == weights + biases &&
         std::memcmp(e.source.data(), weight, weights * sizeof(float)) == 0 &&
         (biases == 0 || std::memcmp(e.source.data() + weights, bias, biases * sizeof(float)) == 0);
}

// The kernel transformed for a product reducing over `reduce` channels into `outs`, tap(o, r,
// ky, kx) reading the 3x3 kernel; from the cache when weight and bias are unchanged.
template <typename Tap>
const WinogradKernel* cached_kernel(ThreadPool& pool, bool backward, int reduce, int outs, const float* weight,
                                    const float* bias, Tap tap) {
  const size_t weights = static_cast<size_t>(reduce) * outs * 9, biases = bias != nullptr ? outs : 0;
  ++t_clock;
  for (CachedKernel& e : t_cached)
    if (same_source(e, backward, reduce, outs, weight, weights, bias, biases)) {
      e.used = t_clock;
      return &e.kernel;
    }
  try {
    if (t_cached.size() < kCachedKernels) t_cached.emplace_back();
    CachedKernel* e = &t_cached[0];
    for (CachedKernel& c : t_cached)
      if (c.used < e->used) e = &c;
    e->used = 0;  // invalid until filled
    e->backward = backward;
    e->reduce = reduce;
    e->outs = outs;
    e->source.assign(weight, weight + weights);
    if (biases != 0) e->source.insert(e->source.end(), bias, bias + biases);
    fill_kernel(pool, reduce, outs, tap, bias, &e->kernel);
    e->used = t_clock;
    return &e->kernel;
  } catch (const std::bad_alloc&) {
    t_cached.clear();
    return nullptr;
  }
}

float forward_tap(const float* weight, int in_c, int o, int r, int ky, int kx) {
  return weight[((static_cast<size_t>(o) * in_c + r) * 3 + ky) * 3 + kx];
}

// Scratch of the transformed inputs and products of a block of `count` tiles.
float* block_scratch_in(const WinogradArgs& a, int count) {
  return scratch(kScratchWinogradIn, static_cast<size_t>(16) * (count * a.c_pad + kWinogradPlanePad));
}
float* block_scratch_out(const WinogradArgs& a, int count) {
  return scratch(kScratchWinogradOut, static_cast<size_t>(16) * (count * a.k_pad + kWinogradPlanePad));
}

// Runs the tile blocks of `a` on the pool: kTilesPerBlock tiles each, fewer when that would
// leave threads idle (a batch of one image has 16 tiles in conv4).
Status run_blocks(ThreadPool& pool, const KernelTable& kt, int n, const WinogradArgs& a) {
  const int64_t tiles = static_cast<int64_t>(n) * a.tiles_h * a.tiles_w;
  const int64_t per_task = (tiles + 4 * pool.threads() - 1) / (4 * pool.threads());
  const int per_block = static_cast<int>(std::clamp<int64_t>(per_task, kMinTilesPerBlock, kTilesPerBlock));
  const int64_t blocks = (tiles + per_block - 1) / per_block;
  bool out_of_memory = false;
  pool.parallel_for(blocks, [&](int64_t block) {
    const int64_t tile0 = block * per_block;
    const int count = static_cast<int>(tiles - tile0 < per_block ? tiles - tile0 : per_block);
    float* v = block_scratch_in(a, kTilesPerBlock);
    float* m = block_scratch_out(a, kTilesPerBlock);
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

bool winograd_forward_pools(const Conv3x3Shape& s) {
  return s.fast && winograd_forward_chosen(s) && s.out_h() % 2 == 0 && s.out_w() % 2 == 0;
}

bool winograd_backward_data_chosen(const Conv3x3Shape& s) {
  // The product reduces over the layer's output channels and produces its input channels.
  return !forced_direct() && s.k == 3 && s.out_c >= kMinChannels && s.in_c >= kMinChannels;
}

std::string conv3x3_kernels_summary() {
  if (forced_direct()) return "conv3x3: direct (TEMPERED_CONV=direct)";
  return "conv3x3: Winograd F(2x2,3x3) where in and out channels >= 32, direct elsewhere; at inference fused with "
         "the max-pool after and the direct convolution before";
}

Status winograd_f2x2_3x3_forward(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* x,
                                 const float* weight, const float* bias, float* y, bool relu) {
  const WinogradKernel* k = winograd_forward_cached_kernel(pool, s, weight, bias);
  if (k == nullptr) return Status::OutOfMemory("winograd_f2x2_3x3_forward: kernel");
  return run_blocks(pool, kt, s.n, winograd_forward_args(s, x, *k, y, relu));
}

Status winograd_forward_kernel(ThreadPool& pool, const Conv3x3Shape& s, const float* weight, const float* bias,
                               WinogradKernel* out) {
  const int in_c = s.in_c;
  try {
    fill_kernel(
        pool, s.in_c, s.out_c, [&](int o, int r, int ky, int kx) { return forward_tap(weight, in_c, o, r, ky, kx); },
        bias, out);
  } catch (const std::bad_alloc&) {
    return Status::OutOfMemory("winograd_forward_kernel");
  }
  return Status::Ok();
}

WinogradArgs winograd_forward_args(const Conv3x3Shape& s, const float* x, const WinogradKernel& w, float* y,
                                   bool relu) {
  const int out_h = s.out_h(), out_w = s.out_w();
  return WinogradArgs{s.in_h,  s.in_w,  s.in_c,          round_up(s.in_c, 16), 0, out_h, out_w,
                      s.out_c, w.k_pad, (out_h + 1) / 2, (out_w + 1) / 2,      x, w.u,   w.bias,
                      y,       relu,    s.pool2x2};
}

const WinogradKernel* winograd_forward_cached_kernel(ThreadPool& pool, const Conv3x3Shape& s, const float* weight,
                                                     const float* bias) {
  const int in_c = s.in_c;
  return cached_kernel(pool, false, s.in_c, s.out_c, weight, bias,
                       [&](int o, int r, int ky, int kx) { return forward_tap(weight, in_c, o, r, ky, kx); });
}

Status winograd_forward_band(const KernelTable& kt, const WinogradArgs& a, int image, int ty0, int ty1,
                             const float* rows_in, int rows) {
  const int count = (ty1 - ty0) * a.tiles_w;
  static_assert(kWinogradBandTiles <= kTilesPerBlock, "a band fits the block scratch");
  if (a.pad != 0 || count > kWinogradBandTiles) return Status::InvalidArgument("winograd_forward_band: band too wide");
  // The band as an image of its own: `rows` input rows, ty1 - ty0 tile rows, its outputs
  // (pooled or not) where the band's lie in y. Rows past the band's last are past the
  // image's too (the caller's contract), zeros in both.
  WinogradArgs b = a;
  b.in_h = rows;
  b.x = rows_in;
  b.tiles_h = ty1 - ty0;
  b.out_h = std::min(a.out_h - 2 * ty0, 2 * b.tiles_h);
  b.y = a.pool2x2 ? a.y + (static_cast<int64_t>(image) * a.tiles_h * a.tiles_w + ty0 * a.tiles_w) * a.k
                  : a.y + (static_cast<int64_t>(image) * a.out_h + 2 * ty0) * a.out_w * a.k;
  float* v = block_scratch_in(a, count);
  float* m = block_scratch_out(a, count);
  if (v == nullptr || m == nullptr) return Status::OutOfMemory("winograd_forward_band: scratch");
  kt.winograd_f2x2_block(b, 0, count, v, m);
  return Status::Ok();
}

Status winograd_forward_tiles(const KernelTable& kt, const WinogradArgs& a, int image, int ty0, int ty1, int tx0,
                              int tx1) {
  const int count = tx1 - tx0;
  if (count <= 0) return Status::Ok();
  float* v = block_scratch_in(a, count);
  float* m = block_scratch_out(a, count);
  if (v == nullptr || m == nullptr) return Status::OutOfMemory("winograd_forward_tiles: scratch");
  const int64_t first = static_cast<int64_t>(image) * a.tiles_h * a.tiles_w;
  for (int ty = ty0; ty < ty1; ++ty)
    kt.winograd_f2x2_block(a, first + static_cast<int64_t>(ty) * a.tiles_w + tx0, count, v, m);
  return Status::Ok();
}

Status winograd_f2x2_3x3_backward_data(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* dy,
                                       const float* weight, float* dx) {
  // dx = the 'valid' convolution of dy padded by 2 with g[c][k][ky][kx] = w[k][c][2 - ky][2 - kx].
  const int in_c = s.in_c;
  const WinogradKernel* k =
      cached_kernel(pool, true, s.out_c, s.in_c, weight, nullptr, [&](int c, int r, int ky, int kx) {
        return weight[((static_cast<size_t>(r) * in_c + c) * 3 + (2 - ky)) * 3 + (2 - kx)];
      });
  if (k == nullptr) return Status::OutOfMemory("winograd_f2x2_3x3_backward_data: kernel");
  const int out_h = s.out_h(), out_w = s.out_w();
  WinogradArgs a{};
  a.in_h = out_h;  // the product reads dy ...
  a.in_w = out_w;
  a.c = s.out_c;
  a.c_pad = round_up(s.out_c, 16);
  a.pad = 2;         // ... with a zero border of 2
  a.out_h = s.in_h;  // and writes dx
  a.out_w = s.in_w;
  a.k = s.in_c;
  a.k_pad = k->k_pad;
  a.tiles_h = (s.in_h + 1) / 2;
  a.tiles_w = (s.in_w + 1) / 2;
  a.x = dy;
  a.u = k->u;
  a.bias = nullptr;
  a.y = dx;
  a.relu = false;
  a.pool2x2 = false;
  return run_blocks(pool, kt, s.n, a);
}

}  // namespace cpu
}  // namespace tempered
