// The dense layers through cuBLAS (cublas_dense.h).
#include "cublas_dense.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

Status cublas_fail(const CublasApi& api, cublasStatus_t s, const char* op, const char* call) {
  const char* text = api.cublasGetStatusString(s);
  return Status::DeviceError(std::string("cuBLAS error in ") + op + " (" + call + "): " + (text ? text : "unknown") +
                             " (status " + std::to_string(s) + ")");
}

#define TEMPERED_CUBLAS_TRY(api, op, call)                                                                             \
  do {                                                                                                                 \
    cublasStatus_t tempered_cublas_status_ = (api).call;                                                               \
    if (tempered_cublas_status_ != CUBLAS_STATUS_SUCCESS) return cublas_fail(api, tempered_cublas_status_, op, #call); \
  } while (0)

Status handle_for(CudaBackend& b, cublasHandle_t* out, const char* op) {
  const CublasApi& api = *b.cublas_api();
  ThreadWorkspace& ws = b.workspace();
  if (ws.cublas == nullptr) {
    cublasHandle_t h = nullptr;
    TEMPERED_CUBLAS_TRY(api, op, cublasCreate(&h));
    cublasStatus_t st = api.cublasSetStream(h, b.stream());
    if (st == CUBLAS_STATUS_SUCCESS) st = api.cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH);
    if (st == CUBLAS_STATUS_SUCCESS) st = api.cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
    if (st != CUBLAS_STATUS_SUCCESS) {
      api.cublasDestroy(h);
      return cublas_fail(api, st, op, "cublasSetStream/cublasSetMathMode/cublasSetPointerMode");
    }
    ws.cublas = h;
  }
  *out = static_cast<cublasHandle_t>(ws.cublas);
  return Status::Ok();
}

}  // namespace

bool cublas_version(CudaBackend& b, std::string* version, std::string* problem) {
  cublasHandle_t h = nullptr;
  Status st = handle_for(b, &h, "cuBLAS start-up");
  if (!st.ok()) {
    *problem = st.message();
    return false;
  }
  int v = 0;
  if (b.cublas_api()->cublasGetVersion(h, &v) != CUBLAS_STATUS_SUCCESS) {
    *problem = "cublasGetVersion failed";
    return false;
  }
  // major * 10000 + minor * 100 + patch (cuBLAS 11 and later)
  *version = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  return true;
}

void cublas_release(CudaBackend& b, ThreadWorkspace& ws) {
  if (ws.cublas != nullptr) b.cublas_api()->cublasDestroy(static_cast<cublasHandle_t>(ws.cublas));
  ws.cublas = nullptr;
}

Status cublas_dense_forward(CudaBackend& b, const DenseShape& s, const float* x, const float* weight, const float* bias,
                            float* y, bool relu) {
  const char* op = "dense_forward (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  const float one = 1.0f, zero = 0.0f;
  if (s.in > 0) {
    TEMPERED_CUBLAS_TRY(
        *b.cublas_api(), op,
        cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, s.out, s.n, s.in, &one, weight, s.in, x, s.in, &zero, y, s.out));
  } else {
    TEMPERED_CUDA_TRY_ON(b, op, cudaMemsetAsync(y, 0, sizeof(float) * s.n * s.out, b.stream()));
  }
  return add_bias(b, op, y, static_cast<size_t>(s.n), s.out, bias, relu);
}

Status cublas_dense_backward_data(CudaBackend& b, const DenseShape& s, const float* dy, const float* weight,
                                  float* dx) {
  const char* op = "dense_backward_data (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  if (s.out <= 0) {
    TEMPERED_CUDA_TRY_ON(b, op, cudaMemsetAsync(dx, 0, sizeof(float) * s.n * s.in, b.stream()));
    return Status::Ok();
  }
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUBLAS_TRY(
      *b.cublas_api(), op,
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, s.in, s.n, s.out, &one, weight, s.in, dy, s.out, &zero, dx, s.in));
  return Status::Ok();
}

Status cublas_dense_backward_weights(CudaBackend& b, const DenseShape& s, const float* x, const float* dy,
                                     float* dweight) {
  const char* op = "dense_backward_weights (cuBLAS)";
  cublasHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUBLAS_TRY(
      *b.cublas_api(), op,
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, s.in, s.out, s.n, &one, x, s.in, dy, s.out, &zero, dweight, s.in));
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
