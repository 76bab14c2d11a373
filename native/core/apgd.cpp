// APGD (apgd.h has the definition; docs/algorithms.md every choice). The samples still being
// attacked form one batch per round: each round evaluates every active sample's current
// iterate once (loss, input gradient and logits; forward only for a run's last iterate),
// then moves each sample on by itself: success check, step-size schedule, next iterate or
// next run. Samples in different runs or at different steps share the round, so restarts
// and targets keep the batch full, and no sample's arithmetic depends on the others.
#include "apgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attack_results.h"
#include "tempered/counter_rng.h"

namespace tempered {

std::vector<int> apgd_checkpoints(int steps) {
  std::vector<int> w;
  // p_j in hundredths, so that ceil(p_j N) is exact (0.22 * 100 is 22.000000000000004 in double).
  int64_t q_prev = 0, q = 22;
  while (q < 100) {
    const int wj = static_cast<int>((q * steps + 99) / 100);
    if (wj > 0 && wj < steps && (w.empty() || wj != w.back())) w.push_back(wj);
    const int64_t next = q + std::max<int64_t>(q - q_prev - 3, 6);
    q_prev = q;
    q = next;
  }
  return w;
}

void ApgdSchedule::start(double f0) {
  next_ = 0;
  last_w_ = 0;
  increases_ = 0;
  f_prev_ = f_max_ = f_max_at_last_ = f0;
  reduced_last_ = false;  // w_0 = 0 halved nothing
}

ApgdSchedule::Decision ApgdSchedule::observe(int j, double f) {
  Decision d;
  if (f > f_prev_) ++increases_;
  if (f > f_max_) {
    f_max_ = f;
    d.new_max = true;
  }
  f_prev_ = f;
  if (next_ < checkpoints_->size() && (*checkpoints_)[next_] == j) {
    const int interval = j - last_w_;
    const bool few_increases = 4 * increases_ < 3 * interval;  // increases < rho * interval, rho = 0.75
    const bool stalled = !reduced_last_ && !(f_max_ > f_max_at_last_);
    d.halve = few_increases || stalled;
    reduced_last_ = d.halve;
    f_max_at_last_ = f_max_;
    last_w_ = j;
    increases_ = 0;
    ++next_;
    if (d.halve) f_prev_ = f_max_;  // the iterate becomes x_max
  }
  return d;
}

double dlr_loss(const float* z, int classes, int label, int target, double* dz) {
  // pi_1..pi_4: the four largest logits, ties to the lower class (strict > over ascending k).
  int pi[4] = {-1, -1, -1, -1};
  const int top = std::min(classes, 4);
  for (int r = 0; r < top; ++r)
    for (int k = 0; k < classes; ++k) {
      bool taken = false;
      for (int s = 0; s < r; ++s) taken = taken || pi[s] == k;
      if (!taken && (pi[r] < 0 || z[k] > z[pi[r]])) pi[r] = k;
    }
  const double zy = z[label];
  double num, den;
  int other;
  if (target < 0) {
    other = pi[0] == label ? pi[1] : pi[0];  // max_{i != y} z_i
    den = static_cast<double>(z[pi[0]]) - static_cast<double>(z[pi[2]]) + 1e-12;
  } else {
    other = target;
    den = static_cast<double>(z[pi[0]]) - 0.5 * (static_cast<double>(z[pi[2]]) + static_cast<double>(z[pi[3]])) + 1e-12;
  }
  num = zy - static_cast<double>(z[other]);
  if (dz != nullptr) {
    // L = -num / den: dL/dz = -dnum / den + num dden / den^2.
    for (int k = 0; k < classes; ++k) dz[k] = 0.0;
    dz[label] -= 1.0 / den;
    dz[other] += 1.0 / den;
    const double c = num / (den * den);
    dz[pi[0]] += c;
    if (target < 0) {
      dz[pi[2]] -= c;
    } else {
      dz[pi[2]] -= 0.5 * c;
      dz[pi[3]] -= 0.5 * c;
    }
  }
  return -num / den;
}

namespace {

inline int8_t sign_of(double g) { return g > 0.0 ? 1 : (g < 0.0 ? -1 : 0); }

int min_classes(ApgdLoss loss) { return loss == ApgdLoss::kDlr ? 3 : loss == ApgdLoss::kDlrTargeted ? 4 : 2; }

// The loss and logits of each image from a forward pass only (a run's last iterate).
Status apgd_losses(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                   const ApgdConfig& cfg, double* loss, float* logits) {
  if (cfg.loss == ApgdLoss::kCe) return net.attack_losses(images, labels, n, cfg.spec, loss, logits);
  TEMPERED_TRY(net.predict(images, n, logits));
  const int kClasses = net.classes();
  for (int i = 0; i < n; ++i)
    loss[i] = dlr_loss(&logits[static_cast<size_t>(i) * kClasses], kClasses, labels[i],
                       cfg.loss == ApgdLoss::kDlrTargeted ? targets[i] : -1, nullptr);
  return Status::Ok();
}

}  // namespace

Status apgd_loss_gradient(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                          const ApgdConfig& cfg, double* grad, double* loss, float* logits) {
  if (cfg.loss == ApgdLoss::kCe) return net.input_gradient(images, labels, n, cfg.spec, grad, loss, logits);
  if (net.classes() < min_classes(cfg.loss)) return Status::InvalidArgument("too few classes for the DLR loss");
  const int kClasses = net.classes();
  const bool targeted = cfg.loss == ApgdLoss::kDlrTargeted;
  std::vector<double> d(kClasses);
  auto seeds = [&](int start, int m, const float* z, float* dz) {
    for (int i = 0; i < m; ++i) {
      const int at = start + i;
      loss[at] =
          dlr_loss(&z[static_cast<size_t>(i) * kClasses], kClasses, labels[at], targeted ? targets[at] : -1, d.data());
      for (int k = 0; k < kClasses; ++k) dz[static_cast<size_t>(i) * kClasses + k] = static_cast<float>(d[k]);
    }
  };
  return net.logit_vjp(images, n, 1, seeds, grad, logits);
}

Status run_apgd(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
                const ApgdConfig& cfg, AttackResults* out) {
  if (!(cfg.epsilon > 0.0f && cfg.epsilon <= 1.0f)) return Status::InvalidArgument("epsilon must be in (0, 1]");
  if (cfg.steps < 1) return Status::InvalidArgument("steps must be at least 1");
  if (cfg.restarts < 1) return Status::InvalidArgument("restarts must be at least 1");
  const int kPixels = net.input_size(), kClasses = net.classes(), kSteps = cfg.steps;
  if (kClasses < min_classes(cfg.loss)) return Status::InvalidArgument("too few classes for the DLR loss");
  const bool targeted = cfg.loss == ApgdLoss::kDlrTargeted;
  if (targeted && (cfg.target_classes < 1 || cfg.target_classes > kClasses - 1))
    return Status::InvalidArgument("target classes must be in 1..classes - 1");
  const int kTargets = targeted ? cfg.target_classes : 1, kRuns = cfg.restarts * kTargets;
  const std::vector<int> checkpoints = apgd_checkpoints(kSteps);
  const float eps = cfg.epsilon, eta0 = 2.0f * cfg.epsilon;

  AttackResults& r = *out;
  attack_results::start(&r, images, n, kPixels, 0);
  std::vector<float> logits;
  std::vector<int> active;
  TEMPERED_TRY(attack_results::select_attacked(net, images, labels, nullptr, n, &r, &active, &logits));

  // Per sample: the run (target index t = run / restarts), the step j of the current iterate
  // x^j within it, eta, the schedule, steps taken over every run.
  struct State {
    int run = 0, j = 0, steps = 0;
    float eta = 0;
    ApgdSchedule schedule;
    explicit State(const std::vector<int>* w) : schedule(w) {}
  };
  std::vector<State> state(n, State(&checkpoints));
  std::vector<int32_t> targets(static_cast<size_t>(n) * kTargets, 0);
  const size_t kAll = static_cast<size_t>(n) * kPixels;
  std::vector<float> cur(kAll), prev(kAll), best(kAll);
  std::vector<int8_t> best_sign(kAll), sign(kPixels);

  auto start_run = [&](int i) {
    State& s = state[i];
    s.j = 0;
    s.eta = eta0;
    const uint32_t run_seed = counter_bits(cfg.seed, kStreamApgdRun, static_cast<uint32_t>(s.run), 0);
    const float* x0 = &images[static_cast<size_t>(i) * kPixels];
    float* x = &cur[static_cast<size_t>(i) * kPixels];
    for (int p = 0; p < kPixels; ++p) {
      const float u = counter_uniform(run_seed, kStreamApgdStart, keys[i], static_cast<uint32_t>(p));
      x[p] = std::fmin(std::fmax(x0[p] + (2.0f * u - 1.0f) * eps, 0.0f), 1.0f);
    }
  };

  for (int i : active) {
    const float* z = &logits[static_cast<size_t>(i) * kClasses];
    if (targeted) {
      // The classes other than the label by clean logit, descending, ties to the lower class.
      // A NaN logit ranks lowest (and keeps the comparison a strict weak order).
      std::vector<float> v(z, z + kClasses);
      for (float& e : v) e = std::isnan(e) ? -INFINITY : e;
      std::vector<int> order;
      for (int k = 0; k < kClasses; ++k)
        if (k != labels[i]) order.push_back(k);
      std::stable_sort(order.begin(), order.end(), [&v](int a, int b) { return v[a] > v[b]; });
      for (int t = 0; t < kTargets; ++t) targets[static_cast<size_t>(i) * kTargets + t] = order[t];
    }
    start_run(i);
  }

  std::vector<float> batch, batch_logits;
  std::vector<int32_t> batch_labels, batch_targets;
  std::vector<double> grad, loss;
  std::vector<int> slot(n);  // where each active sample sits in its group's batch
  while (!active.empty()) {
    // Group 0: iterates that need their gradient; group 1: the runs' last iterates (x^N).
    std::vector<int> group[2];
    for (int i : active) group[state[i].j == kSteps].push_back(i);
    const int m0 = static_cast<int>(group[0].size()), m = static_cast<int>(active.size());
    batch.resize(static_cast<size_t>(m) * kPixels);
    batch_logits.resize(static_cast<size_t>(m) * kClasses);
    batch_labels.resize(m);
    batch_targets.resize(m);
    grad.resize(static_cast<size_t>(m0) * kPixels);
    loss.resize(m);
    int at = 0;
    for (int g = 0; g < 2; ++g)
      for (int i : group[g]) {
        slot[i] = at;
        std::memcpy(&batch[static_cast<size_t>(at) * kPixels], &cur[static_cast<size_t>(i) * kPixels],
                    sizeof(float) * kPixels);
        batch_labels[at] = labels[i];
        batch_targets[at] = targets[static_cast<size_t>(i) * kTargets + state[i].run / cfg.restarts];
        ++at;
      }
    if (m0 > 0)
      TEMPERED_TRY(apgd_loss_gradient(net, batch.data(), batch_labels.data(), batch_targets.data(), m0, cfg,
                                      grad.data(), loss.data(), batch_logits.data()));
    if (m > m0)
      TEMPERED_TRY(apgd_losses(net, &batch[static_cast<size_t>(m0) * kPixels], &batch_labels[m0], &batch_targets[m0],
                               m - m0, cfg, &loss[m0], &batch_logits[static_cast<size_t>(m0) * kClasses]));

    std::vector<int> next;
    for (int i : active) {
      State& s = state[i];
      const int k = slot[i];
      const size_t base = static_cast<size_t>(i) * kPixels;
      float* x = &cur[base];
      const int pred = attack_results::argmax_row(&batch_logits[static_cast<size_t>(k) * kClasses], kClasses);
      if (pred != labels[i]) {  // success: any class but the label, for apgd-t too
        r.success[i] = 1;
        r.final_prediction[i] = pred;
        r.iterations[i] = s.steps;
        std::memcpy(&r.adversarial[base], x, sizeof(float) * kPixels);
        continue;
      }
      const double f = loss[k];
      const double* g = s.j < kSteps ? &grad[static_cast<size_t>(k) * kPixels] : nullptr;
      if (g != nullptr)
        for (int p = 0; p < kPixels; ++p) sign[p] = sign_of(g[p]);
      if (s.j == 0) {
        if (s.run == 0) {
          bool all_zero = true;
          for (int p = 0; p < kPixels; ++p) all_zero = all_zero && g[p] == 0.0;
          r.saliency_zero[i] = all_zero;
        }
        s.schedule.start(f);
        std::memcpy(&best[base], x, sizeof(float) * kPixels);
        std::memcpy(&best_sign[base], sign.data(), kPixels);
      } else {
        const ApgdSchedule::Decision d = s.schedule.observe(s.j, f);
        if (d.new_max) {
          std::memcpy(&best[base], x, sizeof(float) * kPixels);
          if (g != nullptr) std::memcpy(&best_sign[base], sign.data(), kPixels);
        }
        if (d.halve) {  // never at j = N: checkpoints lie below N
          s.eta *= 0.5f;
          std::memcpy(x, &best[base], sizeof(float) * kPixels);
          std::memcpy(sign.data(), &best_sign[base], kPixels);
        }
      }
      if (s.j == kSteps) {  // this run failed
        if (++s.run == kRuns) {
          r.iterations[i] = s.steps;
          r.final_prediction[i] = labels[i];  // every iterate evaluated so far was classified correctly
          std::memcpy(&r.adversarial[base], &best[base], sizeof(float) * kPixels);
          continue;
        }
        start_run(i);
        next.push_back(i);
        continue;
      }
      // z = P(x + eta sign g); x' = z at j = 0, else P(x + 0.75 (z - x) + 0.25 (x - x_prev)).
      const float* x0 = &images[base];
      float* xp = &prev[base];
      for (int p = 0; p < kPixels; ++p) {
        const float lo = std::fmax(x0[p] - eps, 0.0f), hi = std::fmin(x0[p] + eps, 1.0f);
        const float xk = x[p];
        const float zk = std::fmin(std::fmax(xk + s.eta * static_cast<float>(sign[p]), lo), hi);
        float v = zk;
        if (s.j > 0) v = std::fmin(std::fmax(xk + 0.75f * (zk - xk) + 0.25f * (xk - xp[p]), lo), hi);
        xp[p] = xk;
        x[p] = v;
      }
      ++s.j;
      ++s.steps;
      next.push_back(i);
    }
    active.swap(next);
  }
  attack_results::finish(&r, images, kPixels);
  return Status::Ok();
}

}  // namespace tempered
