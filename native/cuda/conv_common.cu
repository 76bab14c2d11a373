// Weight re-orderings for the convolutions (conv_common.cuh): one thread per element.
#include "conv_common.cuh"

namespace tempered {
namespace cuda {

namespace {

__global__ void pack_conv_weights_kernel(const float* weight, int out_c, int in_c, int order, float* packed) {
  const size_t total = static_cast<size_t>(out_c) * in_c * 9;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    // i indexes the source: weight[k][c][tap]
    const int tap = static_cast<int>(i % 9);
    const size_t kc = i / 9;
    const int c = static_cast<int>(kc % in_c), k = static_cast<int>(kc / in_c);
    size_t dst;
    if (order == static_cast<int>(PackOrder::kTapCK))
      dst = (static_cast<size_t>(tap) * in_c + c) * out_c + k;
    else if (order == static_cast<int>(PackOrder::kTapKC))
      dst = (static_cast<size_t>(tap) * out_c + k) * in_c + c;
    else
      dst = (static_cast<size_t>(k) * 9 + tap) * in_c + c;
    packed[dst] = weight[i];
  }
}

__global__ void unpack_krsc_kernel(const float* packed, int out_c, int in_c, float* weight) {
  const size_t total = static_cast<size_t>(out_c) * in_c * 9;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int tap = static_cast<int>(i % 9);
    const size_t kc = i / 9;
    const int c = static_cast<int>(kc % in_c), k = static_cast<int>(kc / in_c);
    weight[i] = packed[(static_cast<size_t>(k) * 9 + tap) * in_c + c];
  }
}

}  // namespace

Status pack_conv_weights(CudaBackend& b, const char* op, const float* weight, int out_c, int in_c, PackOrder order,
                         float* packed) {
  const size_t total = static_cast<size_t>(out_c) * in_c * 9;
  return b.launch(op, pack_conv_weights_kernel, dim3(blocks_for(total)), dim3(kThreads), weight, out_c, in_c,
                  static_cast<int>(order), packed);
}

Status unpack_conv_weights_krsc(CudaBackend& b, const char* op, const float* packed, int out_c, int in_c,
                                float* weight) {
  const size_t total = static_cast<size_t>(out_c) * in_c * 9;
  return b.launch(op, unpack_krsc_kernel, dim3(blocks_for(total)), dim3(kThreads), packed, out_c, in_c, weight);
}

}  // namespace cuda
}  // namespace tempered
