// pad_hwc / crop_hwc: the zero border of a 'same' convolution, and its backward (the
// gradient of the border is dropped). One thread per output element.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

// y[image][r][col][ch] of the padded [ph][pw][c] image: x inside, 0 on the border.
__global__ void pad_hwc_kernel(int n, int h, int w, int c, int p, const float* x, float* y) {
  const int ph = h + 2 * p, pw = w + 2 * p;
  const size_t per = static_cast<size_t>(ph) * pw * c, total = static_cast<size_t>(n) * per;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t image = i / per;
    const int rest = static_cast<int>(i - image * per);
    const int ch = rest % c, pos = rest / c, col = pos % pw - p, r = pos / pw - p;
    y[i] = r >= 0 && r < h && col >= 0 && col < w ? x[((image * h + r) * w + col) * c + ch] : 0.0f;
  }
}

// y[image][r][col][ch] = x[image][r + p][col + p][ch].
__global__ void crop_hwc_kernel(int n, int h, int w, int c, int p, const float* x, float* y) {
  const int oh = h - 2 * p, ow = w - 2 * p;
  const size_t per = static_cast<size_t>(oh) * ow * c, total = static_cast<size_t>(n) * per;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t image = i / per;
    const int rest = static_cast<int>(i - image * per);
    const int ch = rest % c, pos = rest / c, col = pos % ow, r = pos / ow;
    y[i] = x[((image * h + r + p) * w + col + p) * c + ch];
  }
}

}  // namespace

Status CudaBackend::pad_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  TEMPERED_TRY(healthy("pad_hwc"));
  const size_t total = static_cast<size_t>(n) * (h + 2 * p) * (w + 2 * p) * c;
  if (total == 0) return Status::Ok();
  return launch("pad_hwc", pad_hwc_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h, w, c, p, x, y);
}

Status CudaBackend::crop_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  TEMPERED_TRY(healthy("crop_hwc"));
  const size_t total = static_cast<size_t>(n) * (h - 2 * p) * (w - 2 * p) * c;
  if (total == 0) return Status::Ok();
  return launch("crop_hwc", crop_hwc_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h, w, c, p, x, y);
}

}  // namespace cuda
}  // namespace tempered
