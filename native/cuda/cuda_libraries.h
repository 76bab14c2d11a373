// cuDNN 9 and cuBLAS, loaded at run time with dlopen (cuda_libraries.cpp): the plugin links
// neither, so it builds where their headers are absent and loads where the libraries are.
// This header declares, in the project's own words, the small stable part of their C APIs
// that cudnn_conv.cu and cublas_dense.cu call: opaque handles, the enum values used, the
// algorithm-performance records, and one function-pointer table per library. The values
// are those of cuDNN 9's and cuBLAS 12/13's public headers (unchanged since cuDNN 7 and
// cuBLAS 11 for everything here).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common.cuh"

namespace tempered {
namespace cuda {

// --- cuDNN ------------------------------------------------------------------------------
typedef struct CudnnContext* cudnnHandle_t;
typedef struct CudnnTensorStruct* cudnnTensorDescriptor_t;
typedef struct CudnnFilterStruct* cudnnFilterDescriptor_t;
typedef struct CudnnConvolutionStruct* cudnnConvolutionDescriptor_t;
typedef int cudnnStatus_t;  // 0 = success; the rest are named by GetErrorString
constexpr cudnnStatus_t CUDNN_STATUS_SUCCESS = 0;
enum cudnnDataType_t { CUDNN_DATA_FLOAT = 0 };
enum cudnnTensorFormat_t { CUDNN_TENSOR_NCHW = 0, CUDNN_TENSOR_NHWC = 1 };
enum cudnnConvolutionMode_t { CUDNN_CONVOLUTION = 0, CUDNN_CROSS_CORRELATION = 1 };
enum cudnnMathType_t {
  CUDNN_DEFAULT_MATH = 0,
  CUDNN_TENSOR_OP_MATH = 1,
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
  CUDNN_FMA_MATH = 3
};
enum cudnnDeterminism_t { CUDNN_NON_DETERMINISTIC = 0, CUDNN_DETERMINISTIC = 1 };
enum cudnnConvolutionFwdAlgo_t {
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
  CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
  CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8
};
enum cudnnConvolutionBwdDataAlgo_t {
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 = 0,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD = 4,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6
};
enum cudnnConvolutionBwdFilterAlgo_t {
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 = 0,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT = 2,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7
};
template <typename Algo>
struct CudnnAlgoPerf {
  Algo algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t mathType;
  int reserved[3];
};
typedef CudnnAlgoPerf<cudnnConvolutionFwdAlgo_t> cudnnConvolutionFwdAlgoPerf_t;
typedef CudnnAlgoPerf<cudnnConvolutionBwdDataAlgo_t> cudnnConvolutionBwdDataAlgoPerf_t;
typedef CudnnAlgoPerf<cudnnConvolutionBwdFilterAlgo_t> cudnnConvolutionBwdFilterAlgoPerf_t;

// X(return type, name, parameters): every cuDNN function the plugin calls.
#define TEMPERED_CUDNN_FUNCTIONS(X)                                                                                    \
  X(size_t, cudnnGetVersion, (void))                                                                                   \
  X(size_t, cudnnGetCudartVersion, (void))                                                                             \
  X(const char*, cudnnGetErrorString, (cudnnStatus_t))                                                                 \
  X(cudnnStatus_t, cudnnCreate, (cudnnHandle_t*))                                                                      \
  X(cudnnStatus_t, cudnnDestroy, (cudnnHandle_t))                                                                      \
  X(cudnnStatus_t, cudnnSetStream, (cudnnHandle_t, cudaStream_t))                                                      \
  X(cudnnStatus_t, cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t*))                                            \
  X(cudnnStatus_t, cudnnDestroyTensorDescriptor, (cudnnTensorDescriptor_t))                                            \
  X(cudnnStatus_t, cudnnSetTensor4dDescriptor,                                                                         \
    (cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, int, int, int))                               \
  X(cudnnStatus_t, cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t*))                                            \
  X(cudnnStatus_t, cudnnDestroyFilterDescriptor, (cudnnFilterDescriptor_t))                                            \
  X(cudnnStatus_t, cudnnSetFilter4dDescriptor,                                                                         \
    (cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int))                               \
  X(cudnnStatus_t, cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t*))                                  \
  X(cudnnStatus_t, cudnnDestroyConvolutionDescriptor, (cudnnConvolutionDescriptor_t))                                  \
  X(cudnnStatus_t, cudnnSetConvolution2dDescriptor,                                                                    \
    (cudnnConvolutionDescriptor_t, int, int, int, int, int, int, cudnnConvolutionMode_t, cudnnDataType_t))             \
  X(cudnnStatus_t, cudnnSetConvolutionMathType, (cudnnConvolutionDescriptor_t, cudnnMathType_t))                       \
  X(cudnnStatus_t, cudnnGetConvolutionForwardAlgorithm_v7,                                                             \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnTensorDescriptor_t, int, int*, cudnnConvolutionFwdAlgoPerf_t*))                                              \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardDataAlgorithm_v7,                                                        \
    (cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnTensorDescriptor_t, int, int*, cudnnConvolutionBwdDataAlgoPerf_t*))                                          \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardFilterAlgorithm_v7,                                                      \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnFilterDescriptor_t, int, int*, cudnnConvolutionBwdFilterAlgoPerf_t*))                                        \
  X(cudnnStatus_t, cudnnGetConvolutionForwardWorkspaceSize,                                                            \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnFilterDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnTensorDescriptor_t, cudnnConvolutionFwdAlgo_t, size_t*))                                                     \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardDataWorkspaceSize,                                                       \
    (cudnnHandle_t, cudnnFilterDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnTensorDescriptor_t, cudnnConvolutionBwdDataAlgo_t, size_t*))                                                 \
  X(cudnnStatus_t, cudnnGetConvolutionBackwardFilterWorkspaceSize,                                                     \
    (cudnnHandle_t, cudnnTensorDescriptor_t, cudnnTensorDescriptor_t, cudnnConvolutionDescriptor_t,                    \
     cudnnFilterDescriptor_t, cudnnConvolutionBwdFilterAlgo_t, size_t*))                                               \
  X(cudnnStatus_t, cudnnConvolutionForward,                                                                            \
    (cudnnHandle_t, const void*, cudnnTensorDescriptor_t, const void*, cudnnFilterDescriptor_t, const void*,           \
     cudnnConvolutionDescriptor_t, cudnnConvolutionFwdAlgo_t, void*, size_t, const void*, cudnnTensorDescriptor_t,     \
     void*))                                                                                                           \
  X(cudnnStatus_t, cudnnConvolutionBackwardData,                                                                       \
    (cudnnHandle_t, const void*, cudnnFilterDescriptor_t, const void*, cudnnTensorDescriptor_t, const void*,           \
     cudnnConvolutionDescriptor_t, cudnnConvolutionBwdDataAlgo_t, void*, size_t, const void*, cudnnTensorDescriptor_t, \
     void*))                                                                                                           \
  X(cudnnStatus_t, cudnnConvolutionBackwardFilter,                                                                     \
    (cudnnHandle_t, const void*, cudnnTensorDescriptor_t, const void*, cudnnTensorDescriptor_t, const void*,           \
     cudnnConvolutionDescriptor_t, cudnnConvolutionBwdFilterAlgo_t, void*, size_t, const void*,                        \
     cudnnFilterDescriptor_t, void*))

// --- cuBLAS -----------------------------------------------------------------------------
typedef struct CublasContext* cublasHandle_t;
typedef int cublasStatus_t;
constexpr cublasStatus_t CUBLAS_STATUS_SUCCESS = 0;
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2 };
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0 };

// X(return type, name, exported symbol, parameters): cublas_v2.h maps the names to the _v2
// symbols, which is what the library exports.
#define TEMPERED_CUBLAS_FUNCTIONS(X)                                                                       \
  X(cublasStatus_t, cublasCreate, cublasCreate_v2, (cublasHandle_t*))                                      \
  X(cublasStatus_t, cublasDestroy, cublasDestroy_v2, (cublasHandle_t))                                     \
  X(cublasStatus_t, cublasGetVersion, cublasGetVersion_v2, (cublasHandle_t, int*))                         \
  X(cublasStatus_t, cublasSetStream, cublasSetStream_v2, (cublasHandle_t, cudaStream_t))                   \
  X(cublasStatus_t, cublasSetMathMode, cublasSetMathMode, (cublasHandle_t, cublasMath_t))                  \
  X(cublasStatus_t, cublasSetPointerMode, cublasSetPointerMode_v2, (cublasHandle_t, cublasPointerMode_t))  \
  X(const char*, cublasGetStatusString, cublasGetStatusString, (cublasStatus_t))                           \
  X(cublasStatus_t, cublasSgemm, cublasSgemm_v2,                                                           \
    (cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float*, const float*, int, \
     const float*, int, const float*, float*, int))

#define TEMPERED_LIBRARY_POINTER(ret, name, params) ret(*name) params = nullptr;
#define TEMPERED_CUBLAS_POINTER(ret, name, symbol, params) ret(*name) params = nullptr;

// A loaded library: the file, its version, and its functions (all non-null once loaded).
struct CudnnApi {
  std::string file;
  std::string version;  // "9.10.2"
  TEMPERED_CUDNN_FUNCTIONS(TEMPERED_LIBRARY_POINTER)
};
struct CublasApi {
  std::string file;
  int major = 0;
  TEMPERED_CUBLAS_FUNCTIONS(TEMPERED_CUBLAS_POINTER)
};

// Loads the library once per process (native/cuda/library_search.h says where it looks).
// Null when it is absent or unusable; *note then says what was searched or what was wrong.
const CudnnApi* load_cudnn(std::string* note);
const CublasApi* load_cublas(int cuda_major, std::string* note);

}  // namespace cuda
}  // namespace tempered
