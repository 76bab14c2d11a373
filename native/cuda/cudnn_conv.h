// The convolutions through cuDNN 9 (loaded at run time, cuda_libraries.h). Tensors are NHWC
// float; our PyTorch-layout weights [K][C][3][3] are re-ordered to cuDNN's NHWC filter layout
// [K][3][3][C] (KRSC) before the forward and backward-data convolutions, and the
// backward-filter result is re-ordered back.
//
// Only algorithms whose rounding does not depend on the position in the image are used:
// implicit GEMM for the forward pass and ALGO_1 for both backward passes, deterministic and
// with FMA math (no TF32 tensor cores, which round to 10-bit mantissas; no FFT or Winograd,
// whose transforms round differently at each position). A shape for which cuDNN offers none
// of them runs on our own kernels: each function then sets *done = false and does nothing.
#pragma once

#include <string>

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

// At start-up: whether cuDNN can run the network's convolution shape our way.
bool cudnn_ready(CudaBackend& b, std::string* problem);
// Destroys the calling thread's handle (made through b.cudnn_api()).
void cudnn_release(CudaBackend& b, ThreadWorkspace& ws);

Status cudnn_conv3x3_forward(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* weight,
                             const float* bias, float* y, bool relu, bool* done);
Status cudnn_conv3x3_backward_data(CudaBackend& b, const Conv3x3Shape& s, const float* dy, const float* weight,
                                   float* dx, bool* done);
// dweight only; the caller adds the bias gradient.
Status cudnn_conv3x3_backward_weights(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* dy,
                                      float* dweight, bool* done);

}  // namespace cuda
}  // namespace tempered
