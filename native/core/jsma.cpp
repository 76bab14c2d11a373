// JSMA and JSMA-Z (attack.h has the definition). Per iteration and batch of active
// samples: one forward pass (whose logits also tell whether the previous pair succeeded)
// and two backward passes (a = dF_t/dx and b = sum_{j != t} dF_j/dx), then the pair search
// on the host over each sample's search domain.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attack.h"
#include "attack_results.h"

namespace tempered {

namespace {

// The two seeds of sample with target t: d(F_t)/dz and d(sum_{j != t} F_j)/dz, in float32 as
// a framework differentiating its float32 softmax would compute them.
void jsma_seeds(const float* z, int kClasses, int t, const JsmaConfig& cfg, float* alpha_seed, float* beta_seed) {
  if (cfg.on_logits) {
    for (int j = 0; j < kClasses; ++j) {
      alpha_seed[j] = j == t ? 1.0f : 0.0f;
      beta_seed[j] = j == t ? 0.0f : 1.0f;
    }
    return;
  }
  const float temp = cfg.temperature;
  float m = -INFINITY;
  for (int j = 0; j < kClasses; ++j) m = std::fmax(m, z[j] / temp);
  std::vector<float> e(kClasses), p(kClasses);
  float s = 0.0f;
  for (int j = 0; j < kClasses; ++j) s += (e[j] = std::exp(z[j] / temp - m));
  for (int j = 0; j < kClasses; ++j) p[j] = e[j] / s;
  // dF_i/dz_j = p_i (delta_ij - p_j) / T
  for (int j = 0; j < kClasses; ++j) {
    alpha_seed[j] = p[t] * ((j == t ? 1.0f : 0.0f) - p[j]) / temp;
    float sum = 0.0f;
    for (int i = 0; i < kClasses; ++i)
      if (i != t) sum += p[i] * ((i == j ? 1.0f : 0.0f) - p[j]) / temp;
    beta_seed[j] = sum;
  }
}

}  // namespace

Status run_jsma(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                const JsmaConfig& cfg, AttackResults* out) {
  // JSMA works on the input's features (every channel of every pixel on its own), as Papernot
  // et al. define it; for a one-channel image a feature is a pixel.
  const int kPixels = net.input_size(), kClasses = net.classes();
  if (cfg.budget < 2 || cfg.budget > kPixels)
    return Status::InvalidArgument("JSMA budget must be in 2.." + std::to_string(kPixels) + " features");
  if (!(cfg.temperature > 0.0f) || !std::isfinite(cfg.temperature))
    return Status::InvalidArgument("JSMA temperature must be positive and finite");
  for (int i = 0; i < n; ++i)
    if (targets[i] < 0 || targets[i] >= kClasses)
      return Status::InvalidArgument("JSMA targets must be classes 0.." + std::to_string(kClasses - 1));
  AttackResults& r = *out;
  attack_results::start(&r, images, n, kPixels, cfg.budget);
  const int max_pairs = cfg.budget / 2;

  std::vector<int> active;
  TEMPERED_TRY(attack_results::select_attacked(net, images, labels, targets, n, &r, &active));
  // used[i][p]: pixel p of sample i was chosen (it is then 1 and outside the domain anyway).
  std::vector<uint8_t> used(static_cast<size_t>(n) * kPixels, 0);
  std::vector<float> batch, batch_logits;
  std::vector<double> grads;
  std::vector<double> a(kPixels), b(kPixels);
  std::vector<int32_t> ids(kPixels);
  for (int pair = 0; !active.empty(); ++pair) {
    const int m = static_cast<int>(active.size());
    batch.resize(static_cast<size_t>(m) * kPixels);
    batch_logits.resize(static_cast<size_t>(m) * kClasses);
    for (int k = 0; k < m; ++k)
      std::memcpy(&batch[static_cast<size_t>(k) * kPixels], &r.adversarial[static_cast<size_t>(active[k]) * kPixels],
                  sizeof(float) * kPixels);
    if (pair == max_pairs) {  // the last pair only needs checking
      TEMPERED_TRY(net.predict(batch.data(), m, batch_logits.data()));
    } else {
      grads.resize(static_cast<size_t>(m) * 2 * kPixels);
      auto seeds = [&](int start, int count, const float* z, float* dlogits) {
        for (int k = 0; k < count; ++k)
          jsma_seeds(z + static_cast<size_t>(k) * kClasses, kClasses, targets[active[start + k]], cfg,
                     dlogits + static_cast<size_t>(k) * kClasses, dlogits + static_cast<size_t>(count + k) * kClasses);
      };
      TEMPERED_TRY(net.logit_vjp(batch.data(), m, 2, seeds, grads.data(), batch_logits.data()));
    }
    std::vector<int> next;
    for (int k = 0; k < m; ++k) {
      const int i = active[k];
      r.final_prediction[i] = attack_results::argmax_row(&batch_logits[static_cast<size_t>(k) * kClasses], kClasses);
      if (r.final_prediction[i] == targets[i]) {
        r.success[i] = 1;
        continue;
      }
      if (pair == max_pairs) continue;
      const float* x = &r.adversarial[static_cast<size_t>(i) * kPixels];
      const double* ga = &grads[static_cast<size_t>(k) * 2 * kPixels];
      const double* gb = ga + kPixels;
      int count = 0;
      bool all_zero = true;
      for (int p = 0; p < kPixels; ++p) {
        if (used[static_cast<size_t>(i) * kPixels + p] || !(x[p] < 1.0f)) continue;
        ids[count] = p;
        a[count] = ga[p];
        b[count] = gb[p];
        all_zero = all_zero && ga[p] == 0.0 && gb[p] == 0.0;
        ++count;
      }
      if (pair == 0) r.saliency_zero[i] = all_zero;
      int first = -1, second = -1;
      if (count < 2 || !jsma_best_pair(a.data(), b.data(), count, &first, &second)) continue;  // failed
      float* xi = &r.adversarial[static_cast<size_t>(i) * kPixels];
      for (int c : {first, second}) {
        const int p = ids[c];
        xi[p] = 1.0f;
        used[static_cast<size_t>(i) * kPixels + p] = 1;
        r.path[static_cast<size_t>(i) * cfg.budget + r.iterations[i]] = p;
        ++r.iterations[i];
      }
      next.push_back(i);
    }
    active.swap(next);
  }
  attack_results::finish(&r, images, kPixels);
  return Status::Ok();
}

}  // namespace tempered
