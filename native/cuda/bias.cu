// add_bias: y[row][col] = ReLU?(y[row][col] + bias[col]), the epilogue of the convolutions
// and dense layers computed by cuDNN or cuBLAS (our own kernels add the bias themselves).
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

__global__ void add_bias_kernel(float* y, size_t count, int cols, const float* bias, bool relu) {
  for (size_t i = grid_index(); i < count; i += grid_stride()) {
    const float out = y[i] + bias[i % cols];
    y[i] = relu ? (out > 0.0f ? out : 0.0f) : out;
  }
}

}  // namespace

Status add_bias(CudaBackend& b, const char* op, float* y, size_t rows, int cols, const float* bias, bool relu) {
  const size_t count = rows * static_cast<size_t>(cols);
  if (count == 0) return Status::Ok();
  return b.launch(op, add_bias_kernel, dim3(blocks_for(count)), dim3(kThreads), y, count, cols, bias, relu);
}

}  // namespace cuda
}  // namespace tempered
