// The CPU backend's generic convolution (any odd kernel size; conv_generic.cpp), behind the
// conv3x3_* operations when Conv3x3Shape::k is not 3, and behind the sweep's windows of such
// layers.
#pragma once

#include "kernels.h"
#include "tempered/backend.h"
#include "thread_pool.h"

namespace tempered {
namespace cpu {

// packed[(ky * ks + kx) * in_c + c][k_pad] = weight[k][c][ky][kx] (zeros past out_c).
void pack_conv_weights_generic(const float* weight, int out_c, int in_c, int ks, int k_pad, float* packed);
// Output rows [oy0, oy1), columns [ox0, ox1) of image `image` of a ks x ks convolution with
// weights packed as above (ConvWindow's layout with ks * ks taps).
void conv_generic_window(const ConvWindow& a, int ks, int image, int oy0, int oy1, int ox0, int ox1);

Status conv_generic_forward(ThreadPool& pool, const Conv3x3Shape& s, const float* x, const float* weight,
                            const float* bias, float* y, bool relu);
Status conv_generic_backward_data(ThreadPool& pool, const Conv3x3Shape& s, const float* dy, const float* weight,
                                  float* dx);
Status conv_generic_backward_weights(ThreadPool& pool, const Conv3x3Shape& s, const float* x, const float* dy,
                                     float* dweight, float* dbias);

}  // namespace cpu
}  // namespace tempered
