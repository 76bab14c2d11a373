// dense_forward / dense_backward_data / dense_backward_weights: thread tasks over fixed
// blocks of samples, inputs or outputs; the arithmetic is in dense_kernels.cpp.
#include <algorithm>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

namespace {
constexpr int kSampleBlock = 8;
constexpr int kOutBlock = 40;
constexpr int kInBlock = 128;
}  // namespace

Status CpuBackend::dense_forward(const DenseShape& s, const float* x, const float* weight, const float* bias, float* y,
                                 bool relu) {
  const int nb = (s.n + kSampleBlock - 1) / kSampleBlock, ob = (s.out + kOutBlock - 1) / kOutBlock;
  DenseArgs a{s.n, s.in, s.out};
  const KernelTable& kt = *kernels_;
  pool().parallel_for(static_cast<int64_t>(nb) * ob, [&](int64_t task) {
    int n0 = static_cast<int>(task / ob) * kSampleBlock, o0 = static_cast<int>(task % ob) * kOutBlock;
    kt.dense_forward_block(a, x, weight, bias, y, relu, n0, std::min(s.n, n0 + kSampleBlock), o0,
                           std::min(s.out, o0 + kOutBlock));
  });
  return Status::Ok();
}

Status CpuBackend::dense_backward_data(const DenseShape& s, const float* dy, const float* weight, float* dx) {
  const int nb = (s.n + kSampleBlock - 1) / kSampleBlock, ib = (s.in + kInBlock - 1) / kInBlock;
  DenseArgs a{s.n, s.in, s.out};
  const KernelTable& kt = *kernels_;
  pool().parallel_for(static_cast<int64_t>(nb) * ib, [&](int64_t task) {
    int n0 = static_cast<int>(task / ib) * kSampleBlock, i0 = static_cast<int>(task % ib) * kInBlock;
    kt.dense_backward_data_block(a, dy, weight, dx, n0, std::min(s.n, n0 + kSampleBlock), i0,
                                 std::min(s.in, i0 + kInBlock));
  });
  return Status::Ok();
}

Status CpuBackend::dense_backward_weights(const DenseShape& s, const float* x, const float* dy, float* dweight,
                                          float* dbias) {
  const int ob = (s.out + kOutBlock - 1) / kOutBlock, ib = (s.in + kInBlock - 1) / kInBlock;
  DenseArgs a{s.n, s.in, s.out};
  const KernelTable& kt = *kernels_;
  pool().parallel_for(static_cast<int64_t>(ob) * ib + 1, [&](int64_t task) {
    if (task == static_cast<int64_t>(ob) * ib) {
      for (int o = 0; o < s.out; ++o) {
        float sum = 0.0f;
        for (int n = 0; n < s.n; ++n) sum += dy[static_cast<size_t>(n) * s.out + o];
        dbias[o] = sum;
      }
      return;
    }
    int o0 = static_cast<int>(task / ib) * kOutBlock, i0 = static_cast<int>(task % ib) * kInBlock;
    kt.dense_backward_weights_block(a, x, dy, dweight, o0, std::min(s.out, o0 + kOutBlock), i0,
                                    std::min(s.in, i0 + kInBlock));
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
