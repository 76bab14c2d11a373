// hwc_to_chw / chw_to_hwc: the flatten between the last pooling layer (NHWC) and the first
// dense layer, whose inputs PyTorch orders as (C, H, W). One thread per output element.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

// y[image][ch][p] = x[image][p][ch], p = row * w + col.
__global__ void hwc_to_chw_kernel(int n, int hw, int c, const float* x, float* y) {
  const size_t per = static_cast<size_t>(hw) * c, total = static_cast<size_t>(n) * per;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t image = i / per;
    const int rest = static_cast<int>(i - image * per);
    const int ch = rest / hw, p = rest - ch * hw;
    y[i] = x[image * per + static_cast<size_t>(p) * c + ch];
  }
}

// y[image][p][ch] = x[image][ch][p].
__global__ void chw_to_hwc_kernel(int n, int hw, int c, const float* x, float* y) {
  const size_t per = static_cast<size_t>(hw) * c, total = static_cast<size_t>(n) * per;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t image = i / per;
    const int rest = static_cast<int>(i - image * per);
    const int p = rest / c, ch = rest - p * c;
    y[i] = x[image * per + static_cast<size_t>(ch) * hw + p];
  }
}

}  // namespace

Status CudaBackend::hwc_to_chw(int n, int h, int w, int c, const float* x, float* y) {
  TEMPERED_TRY(healthy("hwc_to_chw"));
  const size_t total = static_cast<size_t>(n) * h * w * c;
  if (total == 0) return Status::Ok();
  return launch("hwc_to_chw", hwc_to_chw_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h * w, c, x, y);
}

Status CudaBackend::chw_to_hwc(int n, int h, int w, int c, const float* x, float* y) {
  TEMPERED_TRY(healthy("chw_to_hwc"));
  const size_t total = static_cast<size_t>(n) * h * w * c;
  if (total == 0) return Status::Ok();
  return launch("chw_to_hwc", chw_to_hwc_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h * w, c, x, y);
}

}  // namespace cuda
}  // namespace tempered
