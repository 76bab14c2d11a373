// hwc_to_chw / chw_to_hwc: the flatten between the last pooling layer (NHWC) and the
// first dense layer, whose inputs PyTorch orders as (C, H, W).
#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::hwc_to_chw(int n, int h, int w, int c, const float* x, float* y) {
  const int64_t per = static_cast<int64_t>(h) * w * c;
  pool().parallel_for(n, [&](int64_t image) {
    const float* xi = x + image * per;
    float* yi = y + image * per;
    for (int p = 0; p < h * w; ++p)
      for (int ch = 0; ch < c; ++ch) yi[ch * h * w + p] = xi[p * c + ch];
  });
  return Status::Ok();
}

Status CpuBackend::chw_to_hwc(int n, int h, int w, int c, const float* x, float* y) {
  const int64_t per = static_cast<int64_t>(h) * w * c;
  pool().parallel_for(n, [&](int64_t image) {
    const float* xi = x + image * per;
    float* yi = y + image * per;
    for (int p = 0; p < h * w; ++p)
      for (int ch = 0; ch < c; ++ch) yi[p * c + ch] = xi[ch * h * w + p];
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
