// The dense layers through cuBLAS (cublas_dense.h).
#include "cublas_dense.h"

#include <cublas_v2.h>

#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

Status cublas_fail(cublasStatus_t s, const char* op, const char* call) {
  return Status::DeviceError(std::string("cuBLAS error in ") + op + " (" + call + "): " + cublasGetStatusString(s));
}

#define TEMPERED_CUBLAS_TRY(op, call)                                  \
  do {                                                                 \
    cublasStatus_t tempered_cublas_status_ = (call);                   \
    if (tempered_cublas_status_ != CUBLAS_STATUS_SUCCESS)              \
      return cublas_fail(tempered_cublas_status_, op, #call);          \
  } while (0)

Status handle_for(CudaBackend& b, cublasHandle_t* out, const char* op) {
  ThreadWorkspace& ws = b.workspace();
  if (ws.cublas == nullptr) {
    cublasHandle_t h = nullptr;
    TEMPERED_CUBLAS_TRY(op, cublasCreate(&h));
    cublasStatus_t st = cublasSetStream(h, b.stream());
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      return cublas_fail(st, op, "cublasSetStream/cublasSetMathMode");
    }
    ws.cublas = h;
  }
  *out = static_cast<cublasHandle_t>(ws.cublas);
  return Status::Ok();
}

}  // namespace

bool cublas_probe(CudaBackend& b, std::string* version, std::string* problem) {
  cublasHandle_t h = nullptr;
  Status st = handle_for(b, &h, "cuBLAS start-up");
  if (!st.ok()) {
    *problem = st.message();
    return false;
  }
  int v = 0;
  if (cublasGetVersion(h, &v) != CUBLAS_STATUS_SUCCESS) {
    *problem = "cublasGetVersion failed";
    return false;
  }
  // major * 10000 + minor * 100 + patch (cuBLAS 11 and later)
  *version = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  return true;
}

void cublas_release(ThreadWorkspace& ws) {
  if (ws.cublas != nullptr) cublasDestroy(static_cast<cublasHandle_t>(ws.cublas));
  ws.cublas = nullptr;
}

Status cublas_dense_forward(CudaBackend& b, const DenseShape& s, const float* x, const float* weight, const float* bias,
                            float* y, bool relu) {
  const char* op = "dense_forward (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  const float one = 1.0f, zero = 0.0f;
  if (s.in > 0) {
    TEMPERED_CUBLAS_TRY(op, cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, s.out, s.n, s.in, &one, weight, s.in, x, s.in, &zero,
                                        y, s.out));
  } else {
    TEMPERED_CUDA_TRY_ON(b, op, cudaMemsetAsync(y, 0, sizeof(float) * s.n * s.out, b.stream()));
  }
  return add_bias(b, op, y, static_cast<size_t>(s.n), s.out, bias, relu);
}

Status cublas_dense_backward_data(CudaBackend& b, const DenseShape& s, const float* dy, const float* weight, float* dx) {
  const char* op = "dense_backward_data (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  if (s.out <= 0) {
    TEMPERED_CUDA_TRY_ON(b, op, cudaMemsetAsync(dx, 0, sizeof(float) * s.n * s.in, b.stream()));
    return Status::Ok();
  }
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUBLAS_TRY(op, cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, s.in, s.n, s.out, &one, weight, s.in, dy, s.out, &zero,
                                      dx, s.in));
  return Status::Ok();
}

Status cublas_dense_backward_weights(CudaBackend& b, const DenseShape& s, const float* x, const float* dy,
                                     float* dweight) {
  const char* op = "dense_backward_weights (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUBLAS_TRY(op, cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, s.in, s.out, s.n, &one, x, s.in, dy, s.out, &zero,
                                      dweight, s.in));
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
