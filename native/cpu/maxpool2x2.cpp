// maxpool2x2_forward / maxpool2x2_backward on NHWC, one task per image.
#include <cstring>

#include "cpu_backend.h"

namespace tempered {
namespace cpu {

Status CpuBackend::maxpool2x2_forward(int n, int h, int w, int channels, const float* x, float* y, uint8_t* argmax) {
  const int oh = h / 2, ow = w / 2;
  pool().parallel_for(n, [&](int64_t image) {
    // A local copy: the uint8_t stores below may alias anything, a captured c included, and
    // the vectoriser would not know the trip count.
    const int c = channels;
    const float* xi = x + image * h * w * c;
    float* yi = y + image * oh * ow * c;
    uint8_t* ai = argmax + image * oh * ow * c;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const float* p00 = xi + ((2 * oy) * w + 2 * ox) * c;
        const float* p01 = p00 + c;
        const float* p10 = p00 + w * c;
        const float* p11 = p10 + c;
        float* out = yi + (oy * ow + ox) * c;
        uint8_t* arg = ai + (oy * ow + ox) * c;
        // Strictly greater: ties keep the first position in raster order. Written as
        // selects so the compiler vectorises it over channels.
        for (int ch = 0; ch < c; ++ch) {
          const float a = p00[ch], b = p01[ch], d = p10[ch], e = p11[ch];
          const bool s1 = b > a;
          const float m1 = s1 ? b : a;
          const int at1 = s1 ? 1 : 0;
          const bool s2 = d > m1;
          const float m2 = s2 ? d : m1;
          const int at2 = s2 ? 2 : at1;
          const bool s3 = e > m2;
          out[ch] = s3 ? e : m2;
          arg[ch] = static_cast<uint8_t>(s3 ? 3 : at2);
        }
      }
  });
  return Status::Ok();
}

Status CpuBackend::maxpool2x2_backward(int n, int h, int w, int c, const float* dy, const uint8_t* argmax, float* dx) {
  const int oh = h / 2, ow = w / 2;
  pool().parallel_for(n, [&](int64_t image) {
    const float* dyi = dy + image * oh * ow * c;
    const uint8_t* ai = argmax + image * oh * ow * c;
    float* dxi = dx + image * h * w * c;
    std::memset(dxi, 0, sizeof(float) * h * w * c);
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        const float* g = dyi + (oy * ow + ox) * c;
        const uint8_t* arg = ai + (oy * ow + ox) * c;
        for (int ch = 0; ch < c; ++ch) {
          const int a = arg[ch];
          dxi[((2 * oy + (a >> 1)) * w + 2 * ox + (a & 1)) * c + ch] = g[ch];
        }
      }
  });
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
