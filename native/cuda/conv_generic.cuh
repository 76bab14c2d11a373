// The CUDA backend's generic convolution (any odd kernel size; conv_generic.cu), behind the
// conv3x3_* operations when Conv3x3Shape::k is not 3.
#pragma once

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

Status conv_generic_forward(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* x, const float* weight,
                            const float* bias, float* y, bool relu);
Status conv_generic_backward_data(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* dy,
                                  const float* weight, float* dx);
Status conv_generic_backward_weights(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* x,
                                     const float* dy, float* dweight, float* dbias);

}  // namespace cuda
}  // namespace tempered
