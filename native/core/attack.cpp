#include "attack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

namespace tempered {

namespace {

int argmax_row(const float* z, int classes) {
  int best = 0;
  for (int j = 1; j < classes; ++j)
    if (z[j] > z[best]) best = j;
  return best;
}

// Saliency entries as compared by the attacks: NaN ranks below everything.
inline double rank_value(double v) { return std::isnan(v) ? -INFINITY : v; }

// Candidate ids sorted by saliency, largest first, ties in id order.
std::vector<int32_t> order_by(const double* values, int count) {
  std::vector<int32_t> ids(count);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return rank_value(values[a]) > rank_value(values[b]); });
  return ids;
}

// S = |L - L0| in the loss's precision.
void sweep_saliency(const double* losses, double base, LossPrecision precision, int candidates, double* s) {
  for (int c = 0; c < candidates; ++c) {
    if (std::isnan(losses[c])) {
      s[c] = std::nan("");
    } else if (precision == LossPrecision::kFloat32) {
      s[c] = static_cast<double>(std::fabs(static_cast<float>(losses[c]) - static_cast<float>(base)));
    } else {
      s[c] = std::fabs(losses[c] - base);
    }
  }
}

}  // namespace

Status run_attack(Network& net, const float* images, const int32_t* labels, int n, const AttackConfig& cfg,
                  AttackResults* out) {
  // A pixel is a position: candidate c < P sets every channel of position c to 1, c >= P
  // sets position c - P to 0. Algorithms 1 and 3 rank a position by the sum of its channels'
  // gradients (the derivative of moving all of them together).
  const int kPixels = net.plan().positions(), kChannels = net.plan().input.c, kInput = net.input_size();
  const int kClasses = net.classes(), kCandidates = 2 * kPixels;
  if (cfg.algorithm < 1 || cfg.algorithm > 4) return Status::InvalidArgument("algorithm must be 1, 2, 3 or 4");
  if (cfg.budget < 1 || cfg.budget > kPixels)
    return Status::InvalidArgument("budget must be in 1.." + std::to_string(kPixels));
  AttackResults& r = *out;
  r.n = n;
  r.attacked.assign(n, 0);
  r.success.assign(n, 0);
  r.iterations.assign(n, 0);
  r.l0.assign(n, 0);
  r.initial_prediction.assign(n, -1);
  r.final_prediction.assign(n, -1);
  r.saliency_zero.assign(n, 0);
  r.adversarial.assign(images, images + static_cast<size_t>(n) * kInput);
  r.path.assign(static_cast<size_t>(n) * cfg.budget, -1);
  if (cfg.want_saliency) r.saliency.assign(static_cast<size_t>(n) * kCandidates, 0.0);

  std::vector<float> logits(static_cast<size_t>(n) * kClasses);
  TEMPERED_TRY(net.predict(images, n, logits.data()));
  std::vector<int> active;
  for (int i = 0; i < n; ++i) {
    r.initial_prediction[i] = r.final_prediction[i] = argmax_row(&logits[static_cast<size_t>(i) * kClasses], kClasses);
    if (r.initial_prediction[i] == labels[i]) {
      r.attacked[i] = 1;
      active.push_back(i);
    }
  }
  std::vector<uint8_t> modified(static_cast<size_t>(n) * kPixels, 0);
  // Sets candidate c (position c % P to 1 when c < P, else to 0) of sample i as its step-th
  // change, marking the position modified; callers pick only unmodified positions.
  auto apply = [&](int i, int c, int step) {
    const int p = c % kPixels;
    const float value = c < kPixels ? 1.0f : 0.0f;
    modified[static_cast<size_t>(i) * kPixels + p] = 1;
    for (int ch = 0; ch < kChannels; ++ch) r.adversarial[static_cast<size_t>(i) * kInput + p * kChannels + ch] = value;
    r.path[static_cast<size_t>(i) * cfg.budget + step] = c;
    r.iterations[i] = step + 1;
  };

  // Classifies the active samples' current images, marks successes, drops finished ones.
  std::vector<float> batch;
  std::vector<float> batch_logits;
  auto check = [&](std::vector<int>& still) -> Status {
    batch.resize(still.size() * kInput);
    batch_logits.resize(still.size() * kClasses);
    for (size_t k = 0; k < still.size(); ++k)
      std::memcpy(&batch[k * kInput], &r.adversarial[static_cast<size_t>(still[k]) * kInput], sizeof(float) * kInput);
    if (!still.empty()) TEMPERED_TRY(net.predict(batch.data(), static_cast<int>(still.size()), batch_logits.data()));
    std::vector<int> next;
    for (size_t k = 0; k < still.size(); ++k) {
      const int i = still[k];
      r.final_prediction[i] = argmax_row(&batch_logits[k * kClasses], kClasses);
      if (r.final_prediction[i] != labels[i]) {
        r.success[i] = 1;
      } else if (r.iterations[i] < cfg.budget) {
        next.push_back(i);
      }
    }
    still.swap(next);
    return Status::Ok();
  };

  auto gather = [&](const std::vector<int>& ids, std::vector<float>* imgs, std::vector<int32_t>* labs) {
    imgs->resize(ids.size() * kInput);
    labs->resize(ids.size());
    for (size_t k = 0; k < ids.size(); ++k) {
      std::memcpy(&(*imgs)[k * kInput], &r.adversarial[static_cast<size_t>(ids[k]) * kInput], sizeof(float) * kInput);
      (*labs)[k] = labels[ids[k]];
    }
  };

  std::vector<float> imgs;
  std::vector<int32_t> labs;
  if (cfg.algorithm != 4) {
    // Saliency once, then a fixed order of candidates per sample.
    std::vector<std::vector<int32_t>> order(n);
    std::vector<double> saliency;
    gather(active, &imgs, &labs);
    const int m = static_cast<int>(active.size());
    if (cfg.algorithm == 2) {
      std::vector<double> losses(static_cast<size_t>(m) * kCandidates), base(m);
      if (m > 0) TEMPERED_TRY(net.sweep(imgs.data(), labs.data(), nullptr, m, cfg.spec, losses.data(), base.data()));
      saliency.resize(static_cast<size_t>(m) * kCandidates);
      for (int k = 0; k < m; ++k)
        sweep_saliency(&losses[static_cast<size_t>(k) * kCandidates], base[k], cfg.spec.precision, kCandidates,
                       &saliency[static_cast<size_t>(k) * kCandidates]);
    } else {
      std::vector<double> grad(static_cast<size_t>(m) * kInput), loss(m);
      if (m > 0)
        TEMPERED_TRY(net.input_gradient(imgs.data(), labs.data(), m, cfg.spec, grad.data(), loss.data(), nullptr));
      saliency.assign(static_cast<size_t>(m) * kCandidates, 0.0);
      for (int k = 0; k < m; ++k)
        for (int p = 0; p < kPixels; ++p) {
          const double* g = &grad[static_cast<size_t>(k) * kInput + p * kChannels];
          double sum = g[0];
          for (int ch = 1; ch < kChannels; ++ch) sum += g[ch];
          saliency[static_cast<size_t>(k) * kCandidates + p] = sum;
        }
    }
    for (int k = 0; k < m; ++k) {
      const int i = active[k];
      const double* s = &saliency[static_cast<size_t>(k) * kCandidates];
      if (cfg.want_saliency) std::copy(s, s + kCandidates, &r.saliency[static_cast<size_t>(i) * kCandidates]);
      const int count = cfg.algorithm == 2 ? kCandidates : kPixels;
      bool all_zero = true;
      for (int c = 0; c < count; ++c) all_zero = all_zero && s[c] == 0.0;
      r.saliency_zero[i] = all_zero;
      if (cfg.algorithm == 1) {
        std::vector<int32_t> o = order_by(s, kPixels);
        // Only strictly positive entries are candidates; each sets its pixel to 1.
        o.erase(std::remove_if(o.begin(), o.end(), [&](int32_t p) { return !(s[p] > 0.0); }), o.end());
        order[i] = std::move(o);
      } else if (cfg.algorithm == 3) {
        std::vector<double> magnitude(kPixels);
        for (int p = 0; p < kPixels; ++p) magnitude[p] = std::fabs(s[p]);
        std::vector<int32_t> o = order_by(magnitude.data(), kPixels);
        for (int32_t& p : o) p = s[p] > 0.0 ? p : kPixels + p;  // positive: set to 1; else to 0
        order[i] = std::move(o);
      } else {
        order[i] = order_by(s, kCandidates);
      }
    }
    std::vector<size_t> cursor(n, 0);
    for (int step = 0; step < cfg.budget && !active.empty(); ++step) {
      std::vector<int> moved;
      for (int i : active) {
        const std::vector<int32_t>& o = order[i];
        size_t& at = cursor[i];
        while (at < o.size() && modified[static_cast<size_t>(i) * kPixels + o[at] % kPixels]) ++at;
        if (at == o.size()) continue;  // nothing left to try (Algorithm 1: no positive entry): failed
        apply(i, o[at++], step);
        moved.push_back(i);
      }
      active.swap(moved);
      TEMPERED_TRY(check(active));
    }
  } else {
    std::vector<uint8_t> skip;
    std::vector<double> losses, base, s(kCandidates);
    for (int step = 0; step < cfg.budget && !active.empty(); ++step) {
      gather(active, &imgs, &labs);
      const int m = static_cast<int>(active.size());
      skip.resize(static_cast<size_t>(m) * kPixels);
      for (int k = 0; k < m; ++k)
        std::memcpy(&skip[static_cast<size_t>(k) * kPixels], &modified[static_cast<size_t>(active[k]) * kPixels],
                    kPixels);
      losses.resize(static_cast<size_t>(m) * kCandidates);
      base.resize(m);
      TEMPERED_TRY(net.sweep(imgs.data(), labs.data(), skip.data(), m, cfg.spec, losses.data(), base.data()));
      std::vector<int> moved;
      for (int k = 0; k < m; ++k) {
        const int i = active[k];
        sweep_saliency(&losses[static_cast<size_t>(k) * kCandidates], base[k], cfg.spec.precision, kCandidates,
                       s.data());
        if (step == 0) {
          bool all_zero = true;
          for (double v : s) all_zero = all_zero && v == 0.0;
          r.saliency_zero[i] = all_zero;
          if (cfg.want_saliency) std::copy(s.begin(), s.end(), &r.saliency[static_cast<size_t>(i) * kCandidates]);
        }
        int best = -1;
        for (int c = 0; c < kCandidates; ++c) {
          if (modified[static_cast<size_t>(i) * kPixels + c % kPixels]) continue;
          if (best < 0 || rank_value(s[c]) > rank_value(s[best])) best = c;
        }
        if (best < 0) continue;
        apply(i, best, step);
        moved.push_back(i);
      }
      active.swap(moved);
      TEMPERED_TRY(check(active));
    }
  }
  for (int i = 0; i < n; ++i) {
    int changed = 0;
    for (int p = 0; p < kPixels; ++p) {
      bool differs = false;
      for (int ch = 0; ch < kChannels; ++ch) {
        const size_t at = static_cast<size_t>(i) * kInput + p * kChannels + ch;
        differs = differs || r.adversarial[at] != images[at];
      }
      changed += differs;
    }
    r.l0[i] = changed;
  }
  return Status::Ok();
}

}  // namespace tempered
