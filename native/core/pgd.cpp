// PGD and FGSM (attack.h has the definition). Per step and batch of active samples: one
// forward and one backward pass (Network::input_gradient, whose logits also tell whether
// the previous step succeeded), then the sign step and the projections, in float32.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attack.h"
#include "attack_results.h"
#include "tempered/counter_rng.h"

namespace tempered {

namespace {

inline float sign_of(double g) { return g > 0.0 ? 1.0f : (g < 0.0 ? -1.0f : 0.0f); }

}  // namespace

Status run_pgd(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
               const PgdConfig& cfg, AttackResults* out) {
  if (!(cfg.epsilon > 0.0f && cfg.epsilon <= 1.0f)) return Status::InvalidArgument("epsilon must be in (0, 1]");
  if (cfg.steps < 1) return Status::InvalidArgument("steps must be at least 1");
  if (!(cfg.step_size > 0.0f) || !std::isfinite(cfg.step_size))
    return Status::InvalidArgument("step size must be positive");
  const int kPixels = net.input_size(), kClasses = net.classes();  // every input feature
  AttackResults& r = *out;
  attack_results::start(&r, images, n, kPixels, 0);
  // The box each pixel must stay in: the eps-ball around the original, within [0, 1].
  std::vector<float> lo(static_cast<size_t>(n) * kPixels), hi(static_cast<size_t>(n) * kPixels);
  for (size_t at = 0; at < lo.size(); ++at) {
    lo[at] = std::fmax(images[at] - cfg.epsilon, 0.0f);
    hi[at] = std::fmin(images[at] + cfg.epsilon, 1.0f);
  }
  std::vector<int> active;
  TEMPERED_TRY(attack_results::select_attacked(net, images, labels, nullptr, n, &r, &active));
  // Without a random start every sample starts at its original.
  if (cfg.random_start)
    for (int i : active) {
      float* x = &r.adversarial[static_cast<size_t>(i) * kPixels];
      for (int p = 0; p < kPixels; ++p) {
        const float u = counter_uniform(cfg.seed, kStreamPgdStart, keys[i], static_cast<uint32_t>(p));
        const float v = x[p] + (2.0f * u - 1.0f) * cfg.epsilon;
        x[p] = std::fmin(std::fmax(v, 0.0f), 1.0f);
      }
    }
  std::vector<float> batch, batch_logits;
  std::vector<int32_t> batch_labels;
  std::vector<double> grad, loss;
  for (int step = 0; !active.empty(); ++step) {
    const int m = static_cast<int>(active.size());
    batch.resize(static_cast<size_t>(m) * kPixels);
    batch_logits.resize(static_cast<size_t>(m) * kClasses);
    batch_labels.resize(m);
    grad.resize(static_cast<size_t>(m) * kPixels);
    loss.resize(m);
    for (int k = 0; k < m; ++k) {
      std::memcpy(&batch[static_cast<size_t>(k) * kPixels], &r.adversarial[static_cast<size_t>(active[k]) * kPixels],
                  sizeof(float) * kPixels);
      batch_labels[k] = labels[active[k]];
    }
    if (step == cfg.steps) {  // the last step only needs checking
      TEMPERED_TRY(net.predict(batch.data(), m, batch_logits.data()));
    } else {
      TEMPERED_TRY(net.input_gradient(batch.data(), batch_labels.data(), m, cfg.spec, grad.data(), loss.data(),
                                      batch_logits.data()));
    }
    std::vector<int> next;
    for (int k = 0; k < m; ++k) {
      const int i = active[k];
      r.final_prediction[i] = attack_results::argmax_row(&batch_logits[static_cast<size_t>(k) * kClasses], kClasses);
      if (r.final_prediction[i] != labels[i]) {
        r.success[i] = 1;
        continue;
      }
      if (step == cfg.steps) continue;
      const double* g = &grad[static_cast<size_t>(k) * kPixels];
      if (step == 0) {
        bool all_zero = true;
        for (int p = 0; p < kPixels; ++p) all_zero = all_zero && g[p] == 0.0;
        r.saliency_zero[i] = all_zero;
      }
      const size_t base = static_cast<size_t>(i) * kPixels;
      float* x = &r.adversarial[base];
      for (int p = 0; p < kPixels; ++p) {
        const float v = x[p] + cfg.step_size * sign_of(g[p]);
        x[p] = std::fmin(std::fmax(v, lo[base + p]), hi[base + p]);
      }
      r.iterations[i] = step + 1;
      next.push_back(i);
    }
    active.swap(next);
  }
  attack_results::finish(&r, images, kPixels);
  return Status::Ok();
}

}  // namespace tempered
