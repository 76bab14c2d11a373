// The dense layers through cuBLAS's sgemm (loaded at run time, cuda_libraries.h). Our
// matrices are row-major, which cuBLAS sees as their transposes (column-major), so
//   y = x w^T      is  y^T  = w'^T x'      sgemm(T, N, out, n, in,  w, in,  x,  in,  y,  out)
//   dx = dy w      is  dx^T = w' dy'       sgemm(N, N, in,  n, out, w, in,  dy, out, dx, in)
//   dw = dy^T x    is  dw^T = x' dy'^T     sgemm(N, T, in,  out, n, x, in,  dy, out, dw, in)
// (primes: the column-major views). Pedantic math: float32 throughout, never TF32 or other
// reduced-precision tensor-core paths; cuBLAS is deterministic on one stream. The bias (and
// its gradient) are our own kernels.
#pragma once

#include <string>

#include "cuda_backend.h"

namespace tempered {
namespace cuda {

// "13.1.0" from the library (a handle is created on the calling thread), or false and why.
bool cublas_version(CudaBackend& b, std::string* version, std::string* problem);
// Destroys the calling thread's handle (made through b.cublas_api()).
void cublas_release(CudaBackend& b, ThreadWorkspace& ws);

Status cublas_dense_forward(CudaBackend& b, const DenseShape& s, const float* x, const float* weight, const float* bias,
                            float* y, bool relu);
Status cublas_dense_backward_data(CudaBackend& b, const DenseShape& s, const float* dy, const float* weight, float* dx);
// dweight only; the caller adds the bias gradient.
Status cublas_dense_backward_weights(CudaBackend& b, const DenseShape& s, const float* x, const float* dy,
                                     float* dweight);

}  // namespace cuda
}  // namespace tempered
