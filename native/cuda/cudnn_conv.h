// The convolutions through cuDNN (compiled only with TEMPERED_HAVE_CUDNN). Tensors are NHWC
// float; our PyTorch-layout weights [K][C][3][3] are re-ordered to cuDNN's NHWC filter layout
// [K][3][3][C] (KRSC) before the forward and backward-data convolutions, and the
// backward-filter result is re-ordered back. Math is FMA-only (no TF32 tensor cores, which
// would break float32 parity with the CPU), and only deterministic algorithms are used.
//
// Each function sets *done = false (and does nothing) when cuDNN offers no suitable
// algorithm for the shape; the caller then uses its own kernels.
#pragma once

#include <string>

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

// At start-up: whether cuDNN works here (library loads, a handle can be created, and a
// convolution of the network's shape has a suitable algorithm).
bool cudnn_probe(CudaBackend& b, std::string* version, std::string* problem);
void cudnn_release(ThreadWorkspace& ws);

Status cudnn_conv3x3_forward(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* weight,
                             const float* bias, float* y, bool relu, bool* done);
Status cudnn_conv3x3_backward_data(CudaBackend& b, const Conv3x3Shape& s, const float* dy, const float* weight,
                                   float* dx, bool* done);
// dweight only; the caller adds the bias gradient.
Status cudnn_conv3x3_backward_weights(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* dy,
                                      float* dweight, bool* done);

}  // namespace cuda
}  // namespace tempered
