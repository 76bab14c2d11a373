// Winograd F(2x2, 3x3) for the CPU backend's 3x3 convolutions: the forward pass (training and
// inference alike) and the backward data pass (a 'full' convolution of dy with the flipped,
// transposed kernel, computed as a Winograd convolution of dy with a zero border of 2).
// The direct kernel (conv3x3_forward_kernels.cpp) stays the reference and serves every
// call whose shape does not have Conv3x3Shape::fast set, every shape the table below
// rejects, and everything when TEMPERED_CONV=direct. The Algorithm-2 sweep recomputes its
// windows with whole tiles of the same forward (winograd_forward_tiles), so that every swept
// loss still equals a full forward pass bit for bit.
#pragma once

#include <string>
#include <vector>

#include "kernels.h"
#include "tempered/backend.h"

namespace tempered {
namespace cpu {

class ThreadPool;

// The table (measured on Zen 4, docs/performance.md): Winograd where both channel counts of
// the product are at least 32 (below that the transforms cost more than the 2.25x fewer
// multiply-adds save); false for every shape when TEMPERED_CONV=direct.
bool winograd_forward_chosen(const Conv3x3Shape& s);
bool winograd_backward_data_chosen(const Conv3x3Shape& s);
// Whether the forward pass of s (fast set) can write the 2x2 max-pool of its output: its
// tiles are the pool's windows when both output sizes are even.
bool winograd_forward_pools(const Conv3x3Shape& s);
// One line for device_name() and the bench: what the convolutions use.
std::string conv3x3_kernels_summary();

Status winograd_f2x2_3x3_forward(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* x,
                                 const float* weight, const float* bias, float* y, bool relu);
Status winograd_f2x2_3x3_backward_data(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* dy,
                                       const float* weight, float* dx);

// A forward convolution's transformed kernel U = G g G^T ([16][in_c][k_pad], 64-byte aligned)
// and its bias padded to k_pad, in storage of its own.
struct WinogradKernel {
  std::vector<float> storage;
  float* u = nullptr;
  float* bias = nullptr;
  int k_pad = 0;
};
// Fills `out` for the layer of shape s (the same values winograd_f2x2_3x3_forward uses).
Status winograd_forward_kernel(ThreadPool& pool, const Conv3x3Shape& s, const float* weight, const float* bias,
                               WinogradKernel* out);
// The forward pass of shape s over x into y with kernel w.
WinogradArgs winograd_forward_args(const Conv3x3Shape& s, const float* x, const WinogradKernel& w, float* y, bool relu);
constexpr int kWinogradBandTiles = 32;
// The cached transformed kernel of the forward pass of s (null when out of memory).
const WinogradKernel* winograd_forward_cached_kernel(ThreadPool& pool, const Conv3x3Shape& s, const float* weight,
                                                     const float* bias);
// Tile rows [ty0, ty1) of image `image` (a.pad 0, whole rows, at most kWinogradBandTiles), on the
// calling thread, reading the input rows [2 ty0, 2 ty0 + rows) from `rows_in`
// ([rows][in_w][c]) instead of a.x: every row of the image those tiles read, so the
// outputs are bit-identical to the full forward pass's.
Status winograd_forward_band(const KernelTable& kt, const WinogradArgs& a, int image, int ty0, int ty1,
                             const float* rows_in, int rows);
// Output tiles [ty0, ty1) x [tx0, tx1) (2x2 outputs each) of image `image`, on the calling
// thread: each tile is a fixed sequence of operations, so its outputs are bit-identical to
// those of the full forward pass.
Status winograd_forward_tiles(const KernelTable& kt, const WinogradArgs& a, int image, int ty0, int ty1, int tx0,
                              int tx1);

}  // namespace cpu
}  // namespace tempered
