// Winograd F(2x2, 3x3) for the CPU backend's 3x3 convolutions on the training path: the
// forward pass and the backward data pass (a 'full' convolution of dy with the flipped,
// transposed kernel, computed as a Winograd convolution of dy with a zero border of 2).
// The direct kernel (conv3x3_forward_kernels.cpp) stays the reference and serves every
// call whose shape does not have Conv3x3Shape::fast set, every shape the table below
// rejects, and everything when TEMPERED_CONV=direct.
#pragma once

#include <string>

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
// One line for device_name() and the bench: what the training path's convolutions use.
std::string conv3x3_kernels_summary();

Status winograd_f2x2_3x3_forward(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* x,
                                 const float* weight, const float* bias, float* y, bool relu);
Status winograd_f2x2_3x3_backward_data(ThreadPool& pool, const KernelTable& kt, const Conv3x3Shape& s, const float* dy,
                                       const float* weight, float* dx);

}  // namespace cpu
}  // namespace tempered
