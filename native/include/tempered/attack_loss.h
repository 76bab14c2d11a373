// The losses an attack follows, for one sample, shared by every backend (host and device):
//
//  xent, float32: the usual float32 cross-entropy at the evaluation temperature T, what the
//    paper and the frameworks compute: z' = z / T, lse = m + log(sum exp(z' - m)), L = lse - z'_y.
//    It rounds to exactly 0 once the margin z'_y - max_{j!=y} z'_j exceeds ~16.6.
//  xent, float64: the same loss written as log1p(sum_{j!=y} exp(z'_j - z'_y)) in float64,
//    which stays non-zero until the exponentials underflow (margin ~745).
//  margin: max_{j!=y} z_j - z_y, temperature-free (Carlini & Wagner's logit loss), in the
//    precision asked for. It never saturates.
//
// All three grow as the sample moves towards misclassification, so every attack maximises
// them. Values are returned as double; a float32 loss is computed in float32 and widened.
#pragma once

#include <cmath>

#include "tempered/counter_rng.h"  // TEMPERED_HOST_DEVICE

namespace tempered {

enum class AttackLoss : int { kXent = 0, kMargin = 1 };
enum class LossPrecision : int { kFloat32 = 0, kFloat64 = 1 };

struct LossSpec {
  AttackLoss loss = AttackLoss::kXent;
  LossPrecision precision = LossPrecision::kFloat32;
  float temperature = 1.0f;  // xent only
};

namespace detail {
TEMPERED_HOST_DEVICE static inline int best_other(const float* z, int classes, int label) {
  int best = label == 0 ? 1 : 0;
  for (int j = 0; j < classes; ++j)
    if (j != label && z[j] > z[best]) best = j;
  return best;
}
}  // namespace detail

// The loss; when dz is not null, also its gradient w.r.t. the logits (as double; for
// float32 precision each entry is the float32 value widened).
TEMPERED_HOST_DEVICE static inline double attack_loss(const float* z, int classes, int label, const LossSpec& spec,
                                                      double* dz) {
  if (spec.loss == AttackLoss::kMargin) {
    const int j = detail::best_other(z, classes, label);
    if (dz != nullptr) {
      for (int k = 0; k < classes; ++k) dz[k] = 0.0;
      dz[j] = 1.0;
      dz[label] = -1.0;
    }
    if (spec.precision == LossPrecision::kFloat32) return static_cast<double>(z[j] - z[label]);
    return static_cast<double>(z[j]) - static_cast<double>(z[label]);
  }
  if (spec.precision == LossPrecision::kFloat32) {
    const float t = spec.temperature;
    float m = -INFINITY;
    for (int k = 0; k < classes; ++k) m = fmaxf(m, z[k] / t);
    float s = 0.0f;
    for (int k = 0; k < classes; ++k) s += expf(z[k] / t - m);
    const float loss = m + logf(s) - z[label] / t;
    if (dz != nullptr)
      for (int k = 0; k < classes; ++k) {
        const float p = expf(z[k] / t - m) / s;
        dz[k] = static_cast<double>((p - (k == label ? 1.0f : 0.0f)) / t);
      }
    return static_cast<double>(loss);
  }
  // float64: log1p of the sum of exp(d_j), d_j = (z_j - z_y) / T, shifted by M = max(0, max d_j)
  // so that a sample already misclassified by a wide margin does not overflow.
  const double t = spec.temperature;
  double dmax = 0.0;
  for (int k = 0; k < classes; ++k)
    if (k != label) dmax = fmax(dmax, (static_cast<double>(z[k]) - static_cast<double>(z[label])) / t);
  double sum = 0.0;  // sum_{j != y} exp(d_j - M)
  for (int k = 0; k < classes; ++k)
    if (k != label) sum += exp((static_cast<double>(z[k]) - static_cast<double>(z[label])) / t - dmax);
  const double base = exp(-dmax);  // the label's own term, exp(0 - M)
  const double loss = dmax == 0.0 ? log1p(sum) : dmax + log(base + sum);
  if (dz != nullptr) {
    const double total = base + sum;
    for (int k = 0; k < classes; ++k)
      dz[k] = k == label ? -(sum / total) / t
                         : exp((static_cast<double>(z[k]) - static_cast<double>(z[label])) / t - dmax) / total / t;
  }
  return loss;
}

}  // namespace tempered
