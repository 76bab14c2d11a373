// Emulation only: naive host implementations of the cuDNN and cuBLAS functions declared in
// ../cuda_libraries.h, with the libraries' documented semantics (NHWC tensors, filters in the
// descriptor's format, column-major sgemm), strict about the arguments they check, so that
// a wrong layout, transpose or leading dimension in cudnn_conv.cu / cublas_dense.cu shows
// up as a wrong result or an error in the emulation test. run.sh builds this file as a
// libcudnn.so.9 and a libcublas.so.13 in a pip-like folder, which the plugin's code finds and
// opens with dlopen as it would the real ones.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../cuda_libraries.h"

using namespace tempered::cuda;

namespace {
int g_live_descriptors = 0;  // created and not yet destroyed
int g_fail_calls = 0;        // the next so many convolution / sgemm calls fail (test hook)
bool fail_now() { return g_fail_calls > 0 && g_fail_calls-- > 0; }
}  // namespace

namespace tempered {
namespace cuda {
struct CudnnContext {
  int unused;
};
struct CudnnTensorStruct {
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int n = 0, c = 0, h = 0, w = 0;
  bool set = false;
};
struct CudnnFilterStruct {
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int k = 0, c = 0, h = 0, w = 0;
  bool set = false;
};
struct CudnnConvolutionStruct {
  int pad_h = -1, pad_w = -1, u = 0, v = 0, dil_h = 0, dil_w = 0;
  cudnnConvolutionMode_t mode = CUDNN_CONVOLUTION;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
struct CublasContext {
  int unused;
};
}  // namespace cuda
}  // namespace tempered

namespace {

// Offsets in a tensor / filter by logical (n, c, h, w) / (k, c, r, s).
size_t at(const CudnnTensorStruct* d, int n, int c, int h, int w) {
  if (d->format == CUDNN_TENSOR_NHWC) return ((static_cast<size_t>(n) * d->h + h) * d->w + w) * d->c + c;
  return ((static_cast<size_t>(n) * d->c + c) * d->h + h) * d->w + w;
}
size_t at(const CudnnFilterStruct* d, int k, int c, int r, int s) {
  if (d->format == CUDNN_TENSOR_NHWC) return ((static_cast<size_t>(k) * d->h + r) * d->w + s) * d->c + c;
  return ((static_cast<size_t>(k) * d->c + c) * d->h + r) * d->w + s;
}

// The only convolution we support: valid, stride 1, cross-correlation, float, FMA math.
bool consistent(const CudnnTensorStruct* x, const CudnnFilterStruct* w, const CudnnConvolutionStruct* c,
                const CudnnTensorStruct* y) {
  return x->set && w->set && y->set && c->pad_h == 0 && c->pad_w == 0 && c->u == 1 && c->v == 1 && c->dil_h == 1 &&
         c->dil_w == 1 && c->mode == CUDNN_CROSS_CORRELATION && c->math == CUDNN_FMA_MATH && x->n == y->n &&
         x->c == w->c && y->c == w->k && y->h == x->h - w->h + 1 && y->w == x->w - w->w + 1;
}

// What cuDNN's heuristics list, best first: algorithms the plugin must skip (deterministic
// but position-dependent rounding, non-deterministic, tensor-op math), then the one it wants.
template <typename Algo>
cudnnStatus_t algorithms(int requested, int* returned, CudnnAlgoPerf<Algo>* perf, Algo skip_deterministic, Algo wanted) {
  if (requested < 1) return 2000;
  const struct {
    Algo algo;
    cudnnDeterminism_t det;
    cudnnMathType_t math;
  } list[] = {{skip_deterministic, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH},
              {wanted, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH},
              {wanted, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH},
              {wanted, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH}};
  int count = 0;
  for (const auto& a : list) {
    if (count == requested) break;
    std::memset(&perf[count], 0, sizeof(perf[count]));
    perf[count].algo = a.algo;
    perf[count].status = CUDNN_STATUS_SUCCESS;
    perf[count].memory = 4096;
    perf[count].determinism = a.det;
    perf[count].mathType = a.math;
    ++count;
  }
  *returned = count;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

// Test hooks, found by the emulation test with dlsym.
int fake_cudnn_live_descriptors(void) { return g_live_descriptors; }
void fake_library_fail_calls(int n) { g_fail_calls = n; }

size_t cudnnGetVersion(void) { return 90100; }
size_t cudnnGetCudartVersion(void) { return 13000; }
const char* cudnnGetErrorString(cudnnStatus_t status) {
  return status == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_BAD_PARAM (emulated)";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  *handle = new CudnnContext();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t, cudaStream_t) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* desc) {
  *desc = new CudnnTensorStruct();
  ++g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc) {
  delete desc;
  --g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type, int n,
                                         int c, int h, int w) {
  if (type != CUDNN_DATA_FLOAT || n <= 0 || c <= 0 || h <= 0 || w <= 0) return 2000;  // CUDNN_STATUS_BAD_PARAM
  *d = CudnnTensorStruct{format, n, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* desc) {
  *desc = new CudnnFilterStruct();
  ++g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc) {
  delete desc;
  --g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format, int k,
                                         int c, int h, int w) {
  if (type != CUDNN_DATA_FLOAT || k <= 0 || c <= 0 || h <= 0 || w <= 0) return 2000;  // CUDNN_STATUS_BAD_PARAM
  *d = CudnnFilterStruct{format, k, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* desc) {
  *desc = new CudnnConvolutionStruct();
  ++g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t desc) {
  delete desc;
  --g_live_descriptors;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t type) {
  if (type != CUDNN_DATA_FLOAT) return 2000;  // CUDNN_STATUS_BAD_PARAM
  d->pad_h = pad_h, d->pad_w = pad_w, d->u = u, d->v = v, d->dil_h = dilation_h, d->dil_w = dilation_w, d->mode = mode;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w, const cudnnConvolutionDescriptor_t c,
                                                     const cudnnTensorDescriptor_t y, const int requested, int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  if (!consistent(x, w, c, y)) return 2000;  // CUDNN_STATUS_BAD_PARAM
  return algorithms(requested, returned, perf, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t c,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int* returned, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  if (!consistent(dx, w, c, dy)) return 2000;  // CUDNN_STATUS_BAD_PARAM
  return algorithms(requested, returned, perf, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t c,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  if (!consistent(x, dw, c, dy)) return 2000;  // CUDNN_STATUS_BAD_PARAM
  return algorithms(requested, returned, perf, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                      const cudnnFilterDescriptor_t, const cudnnConvolutionDescriptor_t,
                                                      const cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t, size_t* b) {
  *b = 4096;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t,
                                                           const cudnnTensorDescriptor_t, const cudnnConvolutionDescriptor_t,
                                                           const cudnnTensorDescriptor_t, cudnnConvolutionBwdDataAlgo_t,
                                                           size_t* b) {
  *b = 0;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t,
                                                             const cudnnTensorDescriptor_t,
                                                             const cudnnConvolutionDescriptor_t,
                                                             const cudnnFilterDescriptor_t, cudnnConvolutionBwdFilterAlgo_t,
                                                             size_t* b) {
  *b = 8192;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd, const void* xv,
                                      const cudnnFilterDescriptor_t wd, const void* wv,
                                      const cudnnConvolutionDescriptor_t c, cudnnConvolutionFwdAlgo_t, void* workspace,
                                      size_t bytes, const void* beta, const cudnnTensorDescriptor_t yd, void* yv) {
  if (fail_now()) return 4000;
  if (!consistent(xd, wd, c, yd) || (bytes < 4096 || workspace == nullptr)) return 2000;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const float* x = static_cast<const float*>(xv);
  const float* w = static_cast<const float*>(wv);
  float* y = static_cast<float*>(yv);
  for (int n = 0; n < yd->n; ++n)
    for (int k = 0; k < yd->c; ++k)
      for (int oy = 0; oy < yd->h; ++oy)
        for (int ox = 0; ox < yd->w; ++ox) {
          double s = 0;
          for (int ch = 0; ch < xd->c; ++ch)
            for (int r = 0; r < wd->h; ++r)
              for (int q = 0; q < wd->w; ++q) s += static_cast<double>(x[at(xd, n, ch, oy + r, ox + q)]) * w[at(wd, k, ch, r, q)];
          float& out = y[at(yd, n, k, oy, ox)];
          out = static_cast<float>(a * s + (b != 0 ? b * out : 0.0));
        }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t, const void* alpha, const cudnnFilterDescriptor_t wd, const void* wv,
                                           const cudnnTensorDescriptor_t dyd, const void* dyv,
                                           const cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdDataAlgo_t, void*, size_t,
                                           const void* beta, const cudnnTensorDescriptor_t dxd, void* dxv) {
  if (!consistent(dxd, wd, c, dyd)) return 2000;  // CUDNN_STATUS_BAD_PARAM
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const float* w = static_cast<const float*>(wv);
  const float* dy = static_cast<const float*>(dyv);
  float* dx = static_cast<float*>(dxv);
  for (int n = 0; n < dxd->n; ++n)
    for (int ch = 0; ch < dxd->c; ++ch)
      for (int iy = 0; iy < dxd->h; ++iy)
        for (int ix = 0; ix < dxd->w; ++ix) {
          double s = 0;
          for (int k = 0; k < dyd->c; ++k)
            for (int r = 0; r < wd->h; ++r)
              for (int q = 0; q < wd->w; ++q) {
                const int oy = iy - r, ox = ix - q;
                if (oy < 0 || oy >= dyd->h || ox < 0 || ox >= dyd->w) continue;
                s += static_cast<double>(dy[at(dyd, n, k, oy, ox)]) * w[at(wd, k, ch, r, q)];
              }
          float& out = dx[at(dxd, n, ch, iy, ix)];
          out = static_cast<float>(a * s + (b != 0 ? b * out : 0.0));
        }
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t, const void* alpha, const cudnnTensorDescriptor_t xd, const void* xv,
                                             const cudnnTensorDescriptor_t dyd, const void* dyv,
                                             const cudnnConvolutionDescriptor_t c, cudnnConvolutionBwdFilterAlgo_t,
                                             void* workspace, size_t bytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwd, void* dwv) {
  if (!consistent(xd, dwd, c, dyd) || bytes < 8192 || workspace == nullptr) return 2000;  // CUDNN_STATUS_BAD_PARAM
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const float* x = static_cast<const float*>(xv);
  const float* dy = static_cast<const float*>(dyv);
  float* dw = static_cast<float*>(dwv);
  for (int k = 0; k < dwd->k; ++k)
    for (int ch = 0; ch < dwd->c; ++ch)
      for (int r = 0; r < dwd->h; ++r)
        for (int q = 0; q < dwd->w; ++q) {
          double s = 0;
          for (int n = 0; n < dyd->n; ++n)
            for (int oy = 0; oy < dyd->h; ++oy)
              for (int ox = 0; ox < dyd->w; ++ox)
                s += static_cast<double>(dy[at(dyd, n, k, oy, ox)]) * x[at(xd, n, ch, oy + r, ox + q)];
          float& out = dw[at(dwd, k, ch, r, q)];
          out = static_cast<float>(a * s + (b != 0 ? b * out : 0.0));
        }
  return CUDNN_STATUS_SUCCESS;
}

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  *handle = new CublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetVersion_v2(cublasHandle_t, int* version) {
  *version = 130100;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t mode) {
  return mode == CUBLAS_PEDANTIC_MATH ? CUBLAS_STATUS_SUCCESS : 7;  // only the float32 mode is accepted
}
cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t, cublasPointerMode_t mode) {
  return mode == CUBLAS_POINTER_MODE_HOST ? CUBLAS_STATUS_SUCCESS : 7;
}
const char* cublasGetStatusString(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE (emulated)";
}
// C = alpha op(A) op(B) + beta C, column-major: op(A) m x k, op(B) k x n.
cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
  const int a_rows = ta == CUBLAS_OP_N ? m : k, b_rows = tb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
      ldc < (m > 1 ? m : 1) || fail_now())
    return 7;  // CUBLAS_STATUS_INVALID_VALUE
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int l = 0; l < k; ++l) {
        const float a = ta == CUBLAS_OP_N ? A[i + static_cast<size_t>(l) * lda] : A[l + static_cast<size_t>(i) * lda];
        const float b = tb == CUBLAS_OP_N ? B[l + static_cast<size_t>(j) * ldb] : B[j + static_cast<size_t>(l) * ldb];
        s += static_cast<double>(a) * b;
      }
      float& c = C[i + static_cast<size_t>(j) * ldc];
      c = static_cast<float>(*alpha * s + (*beta != 0 ? *beta * c : 0.0));
    }
  return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
