// pad_hwc / crop_hwc: the zero border of a 'same' convolution, and its backward (the
// gradient of the border is dropped).
#include <cstring>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::pad_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  const int ph = h + 2 * p, pw = w + 2 * p;
  const size_t in_per = static_cast<size_t>(h) * w * c, out_per = static_cast<size_t>(ph) * pw * c;
  pool().parallel_for(n, [&](int64_t image) {
    const float* xi = x + image * in_per;
    float* yi = y + image * out_per;
    std::memset(yi, 0, sizeof(float) * out_per);
    for (int r = 0; r < h; ++r)
      std::memcpy(yi + ((static_cast<size_t>(r) + p) * pw + p) * c, xi + static_cast<size_t>(r) * w * c,
                  sizeof(float) * w * c);
  });
  return Status::Ok();
}

Status CpuBackend::crop_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  const int oh = h - 2 * p, ow = w - 2 * p;
  const size_t in_per = static_cast<size_t>(h) * w * c, out_per = static_cast<size_t>(oh) * ow * c;
  pool().parallel_for(n, [&](int64_t image) {
    const float* xi = x + image * in_per;
    float* yi = y + image * out_per;
    for (int r = 0; r < oh; ++r)
      std::memcpy(yi + static_cast<size_t>(r) * ow * c, xi + ((static_cast<size_t>(r) + p) * w + p) * c,
                  sizeof(float) * ow * c);
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
