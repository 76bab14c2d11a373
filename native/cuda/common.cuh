// Shared by every .cu file of the CUDA backend: the CUDA runtime (or, when
// TEMPERED_CUDA_EMULATION is defined, the host emulation in emulation/cuda_emulation.h that
// runs the same kernels on the CPU for tests on machines without a GPU), small device
// helpers and launch geometry.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(TEMPERED_CUDA_EMULATION)
#include "emulation/cuda_emulation.h"
#else
#include <cuda_runtime.h>
#endif

namespace tempered {
namespace cuda {

constexpr int kThreads = 256;  // threads per block of the element-wise kernels

__host__ __device__ inline int imin(int a, int b) { return a < b ? a : b; }
__host__ __device__ inline int imax(int a, int b) { return a > b ? a : b; }

// Blocks for a grid-stride loop over `count` elements (at least 1, at most 32,768).
inline unsigned blocks_for(size_t count, int threads = kThreads) {
  size_t b = (count + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 32768) b = 32768;
  return static_cast<unsigned>(b);
}

// The first index and the stride of a grid-stride loop.
__device__ inline size_t grid_index() { return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline size_t grid_stride() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

}  // namespace cuda
}  // namespace tempered
