// Softmax cross-entropy at temperature T for one sample, shared by the CPU and CUDA
// backends so both compute the same float32 formula:
//   z' = z / T,  m = max z',  s = sum exp(z' - m),  lse = m + log(s)
//   loss = lse - z'_y                      (hard label y)
//   loss = sum_j t_j (lse - z'_j)          (soft targets t)
//   dz_j = (exp(z'_j - m) / s - t_j) / T * grad_scale
#pragma once

#include <cmath>

#include "tempered/counter_rng.h"  // TEMPERED_HOST_DEVICE

namespace tempered {

TEMPERED_HOST_DEVICE static inline float softmax_xent_sample(const float* z, int classes, float temperature, int label,
                                                             const float* soft, float grad_scale, float* dz) {
  float m = -INFINITY;
  for (int j = 0; j < classes; ++j) m = fmaxf(m, z[j] / temperature);
  float s = 0.0f;
  for (int j = 0; j < classes; ++j) s += expf(z[j] / temperature - m);
  const float lse = m + logf(s);
  float loss = 0.0f;
  if (soft != nullptr) {
    for (int j = 0; j < classes; ++j) loss += soft[j] * (lse - z[j] / temperature);
  } else {
    loss = lse - z[label] / temperature;
  }
  if (dz != nullptr) {
    for (int j = 0; j < classes; ++j) {
      const float p = expf(z[j] / temperature - m) / s;
      const float t = soft != nullptr ? soft[j] : (j == label ? 1.0f : 0.0f);
      dz[j] = (p - t) / temperature * grad_scale;
    }
  }
  return loss;
}

}  // namespace tempered
