// maxpool2x2_forward / maxpool2x2_backward on NHWC, one thread per output element. The
// comparisons are the CPU's: strictly greater, so ties keep the first position in raster
// order; argmax a in 0..3 is the position (a / 2, a % 2) of the 2x2 window.
#include "cuda_backend.h"

namespace tempered {
namespace cuda {

namespace {

__global__ void maxpool_forward_kernel(int n, int h, int w, int c, const float* x, float* y, uint8_t* argmax) {
  const int oh = h / 2, ow = w / 2;
  const size_t total = static_cast<size_t>(n) * oh * ow * c;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int ch = static_cast<int>(i % c);
    size_t rest = i / c;
    const int ox = static_cast<int>(rest % ow);
    rest /= ow;
    const int oy = static_cast<int>(rest % oh);
    const size_t image = rest / oh;
    const float* p00 = x + ((image * h + 2 * oy) * w + 2 * ox) * c + ch;
    const float v01 = p00[c], v10 = p00[static_cast<size_t>(w) * c], v11 = p00[static_cast<size_t>(w) * c + c];
    float best = p00[0];
    uint8_t at = 0;
    if (v01 > best) {
      best = v01;
      at = 1;
    }
    if (v10 > best) {
      best = v10;
      at = 2;
    }
    if (v11 > best) {
      best = v11;
      at = 3;
    }
    y[i] = best;
    argmax[i] = at;
  }
}

// Each output writes its whole 2x2 window of dx (the gradient at the argmax, 0 elsewhere),
// so every element of dx is written exactly once.
__global__ void maxpool_backward_kernel(int n, int h, int w, int c, const float* dy, const uint8_t* argmax, float* dx) {
  const int oh = h / 2, ow = w / 2;
  const size_t total = static_cast<size_t>(n) * oh * ow * c;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int ch = static_cast<int>(i % c);
    size_t rest = i / c;
    const int ox = static_cast<int>(rest % ow);
    rest /= ow;
    const int oy = static_cast<int>(rest % oh);
    const size_t image = rest / oh;
    const float g = dy[i];
    const int a = argmax[i];
    float* p00 = dx + ((image * h + 2 * oy) * w + 2 * ox) * c + ch;
    p00[0] = a == 0 ? g : 0.0f;
    p00[c] = a == 1 ? g : 0.0f;
    p00[static_cast<size_t>(w) * c] = a == 2 ? g : 0.0f;
    p00[static_cast<size_t>(w) * c + c] = a == 3 ? g : 0.0f;
  }
}

}  // namespace

Status CudaBackend::maxpool2x2_forward(int n, int h, int w, int c, const float* x, float* y, uint8_t* argmax) {
  TEMPERED_TRY(healthy("maxpool2x2_forward"));
  const size_t total = static_cast<size_t>(n) * (h / 2) * (w / 2) * c;
  if (total == 0) return Status::Ok();
  return launch("maxpool2x2_forward", maxpool_forward_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h, w, c, x, y,
                argmax);
}

Status CudaBackend::maxpool2x2_backward(int n, int h, int w, int c, const float* dy, const uint8_t* argmax, float* dx) {
  TEMPERED_TRY(healthy("maxpool2x2_backward"));
  const size_t total = static_cast<size_t>(n) * (h / 2) * (w / 2) * c;
  if (total == 0) return Status::Ok();
  return launch("maxpool2x2_backward", maxpool_backward_kernel, dim3(blocks_for(total)), dim3(kThreads), n, h, w, c, dy,
                argmax, dx);
}

}  // namespace cuda
}  // namespace tempered
