// A host emulation of the small part of CUDA that the backend uses, so that the backend's
// kernels and their host-side orchestration can be tested on machines without a GPU
// (emulation/emulation_test.cpp, run by emulation/run.sh). Included by common.cuh instead of
// <cuda_runtime.h> when TEMPERED_CUDA_EMULATION is defined; never part of the plugin.
//
// Kernels run on the calling thread, synchronously: one block at a time, each CUDA thread of
// the block as a fiber (ucontext) that yields at __syncthreads(), taking turns in the order
// TEMPERED_EMULATION_ORDER names (forward, reversed, or shuffled with a seed), so block-level
// cooperation through __shared__ memory (static storage here: one block runs at a time) and
// barriers behaves as on a device. Device memory is host memory.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInsufficientDriver = 35,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorECCUncorrectable = 214,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchTimeout = 702,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999
} cudaError_t;

typedef struct CUstream_st* cudaStream_t;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
#define cudaStreamNonBlocking 0x01

struct cudaDeviceProp {
  char name[256];
  int major;
  int minor;
  size_t totalGlobalMem;
  int multiProcessorCount;
};
struct cudaFuncAttributes {
  int binaryVersion;
  int ptxVersion;
  int maxThreadsPerBlock;
};

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);

namespace tempered {
namespace cuda {
namespace emulation {

extern uint3 g_thread_idx;
extern uint3 g_block_idx;
extern dim3 g_block_dim;
extern dim3 g_grid_dim;

// Runs `body` once per thread of every block of the grid (see the top of this file).
void run_kernel(dim3 grid, dim3 block, const std::function<void()>& body);
void syncthreads();

// Test hooks: make the next cudaMalloc fail, or every later call fail as after a fault.
void fail_next_malloc();
// A hash of every byte copied from device to host so far: equal in every thread order
// (TEMPERED_EMULATION_ORDER, cuda_emulation.cpp) when the kernels have no races.
uint64_t download_digest();
void inject_sticky_error();

}  // namespace emulation
}  // namespace cuda
}  // namespace tempered

#define threadIdx (::tempered::cuda::emulation::g_thread_idx)
#define blockIdx (::tempered::cuda::emulation::g_block_idx)
#define blockDim (::tempered::cuda::emulation::g_block_dim)
#define gridDim (::tempered::cuda::emulation::g_grid_dim)

inline void __syncthreads() { ::tempered::cuda::emulation::syncthreads(); }
