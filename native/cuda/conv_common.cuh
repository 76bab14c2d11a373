// Weight re-orderings shared by the convolution files. Our weights are PyTorch's
// [K][C][3][3] (tap = ky * 3 + kx); the kernels want them in other orders.
#pragma once

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

enum class PackOrder {
  kTapCK,  // packed[(tap * C + c) * K + k]  (implicit-GEMM forward: B(r = tap*C + c, n = k))
  kTapKC,  // packed[(tap * K + k) * C + c]  (implicit-GEMM backward data: B(r = tap*K + k, n = c))
  kKTapC,  // packed[((k * 9) + tap) * C + c] (cuDNN's NHWC filter layout, KRSC)
};

Status pack_conv_weights(CudaBackend& b, const char* op, const float* weight, int out_c, int in_c, PackOrder order,
                         float* packed);
// The inverse of kKTapC: weight[k][c][tap] = packed[(k * 9 + tap) * C + c].
Status unpack_conv_weights_krsc(CudaBackend& b, const char* op, const float* packed, int out_c, int in_c,
                                float* weight);

}  // namespace cuda
}  // namespace tempered
