// Carlini-Wagner L2 (cw_l2.h has the definition). Per step and batch of attacked samples: the
// float32 images x'(w) built on the host, one forward and one backward pass of the margin's
// gradient (Network::logit_vjp, any backend), then the chain rule through tanh and Adam in
// double on the host.
#include "cw_l2.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attack_results.h"

namespace tempered {

namespace {

constexpr double kUpperStart = 1e10;  // "no success yet" (the authors' code)
constexpr double kTanhShrink = 1.0 - 1e-6;

// The largest logit other than y and its index (the first on ties).
int runner_up(const float* z, int classes, int y) {
  int best = -1;
  for (int j = 0; j < classes; ++j)
    if (j != y && (best < 0 || z[j] > z[best])) best = j;
  return best;
}

// Success at confidence kappa: the argmax of z with kappa added to z_y is not y (the first
// index wins ties, as argmax_row).
bool succeeds(const float* z, int classes, int y, double kappa) {
  int best = 0;
  double best_value = 0.0;
  for (int j = 0; j < classes; ++j) {
    const double v = static_cast<double>(z[j]) + (j == y ? kappa : 0.0);
    if (j == 0 || v > best_value) {
      best = j;
      best_value = v;
    }
  }
  return best != y;
}

}  // namespace

void cw_next_const(bool success, double* lower, double* upper, double* c) {
  if (success) {
    *upper = std::min(*upper, *c);
    *c = (*lower + *upper) / 2.0;
  } else {
    *lower = std::max(*lower, *c);
    *c = *upper < kUpperStart ? (*lower + *upper) / 2.0 : *c * 10.0;
  }
}

void cw_gradient(const double* w, const float* x, const double* dmargin, int pixels, double* grad) {
  for (int p = 0; p < pixels; ++p) {
    const double t = std::tanh(w[p]);
    const double image = (t + 1.0) / 2.0;
    grad[p] = (2.0 * (image - static_cast<double>(x[p])) + dmargin[p]) * (1.0 - t * t) / 2.0;
  }
}

Status run_cw_l2(Network& net, const float* images, const int32_t* labels, int n, const CwL2Config& cfg,
                 AttackResults* out, CwL2Extras* extras) {
  if (cfg.steps < 1 || cfg.steps > 100000) return Status::InvalidArgument("steps must be in 1..100000");
  if (cfg.search_steps < 1 || cfg.search_steps > 100) return Status::InvalidArgument("searchSteps must be in 1..100");
  if (!(cfg.learning_rate > 0.0) || !std::isfinite(cfg.learning_rate))
    return Status::InvalidArgument("learningRate must be positive");
  if (!(cfg.initial_const > 0.0) || !std::isfinite(cfg.initial_const))
    return Status::InvalidArgument("initialConst must be positive");
  if (!(cfg.confidence >= 0.0) || !std::isfinite(cfg.confidence))
    return Status::InvalidArgument("confidence must be at least 0");
  const int kPixels = net.input_size(), kClasses = net.classes(), kRounds = cfg.search_steps;
  AttackResults& r = *out;
  attack_results::start(&r, images, n, kPixels, 0);
  extras->l2.assign(n, 0.0);
  extras->consts.assign(static_cast<size_t>(n) * kRounds, 0.0);
  extras->round_success.assign(static_cast<size_t>(n) * kRounds, 0);
  std::vector<int> active;
  TEMPERED_TRY(attack_results::select_attacked(net, images, labels, nullptr, n, &r, &active));
  const int m = static_cast<int>(active.size());
  if (m == 0) return Status::Ok();
  const size_t kAll = static_cast<size_t>(m) * kPixels;
  std::vector<double> w0(kAll), w(kAll), mom(kAll), vel(kAll), dx(kAll), grad(kPixels);
  std::vector<float> x(kAll), image(kAll), z(static_cast<size_t>(m) * kClasses);
  std::vector<int32_t> y(m);
  for (int k = 0; k < m; ++k) {
    const size_t base = static_cast<size_t>(active[k]) * kPixels;
    std::memcpy(&x[static_cast<size_t>(k) * kPixels], &images[base], sizeof(float) * kPixels);
    y[k] = labels[active[k]];
  }
  for (size_t at = 0; at < kAll; ++at) w0[at] = std::atanh((2.0 * x[at] - 1.0) * kTanhShrink);
  std::vector<double> lower(m, 0.0), upper(m, kUpperStart), c(m, cfg.initial_const);
  std::vector<double> best_l2sq(m, std::numeric_limits<double>::infinity());
  std::vector<uint8_t> hinge(m);  // the margin term is not flat at this step
  const double kappa = cfg.confidence;
  // The margin's seed per image: e_y - e_runner_up where the hinge is active, else zero.
  auto seeds = [&](int start, int rows, const float* zz, float* dz) {
    std::fill(dz, dz + static_cast<size_t>(rows) * kClasses, 0.0f);
    for (int i = 0; i < rows; ++i) {
      const int k = start + i, yk = y[k];
      const float* row = &zz[static_cast<size_t>(i) * kClasses];
      const int j = runner_up(row, kClasses, yk);
      hinge[k] = static_cast<double>(row[yk]) - static_cast<double>(row[j]) > -kappa;
      if (!hinge[k]) continue;
      dz[static_cast<size_t>(i) * kClasses + yk] = 1.0f;
      dz[static_cast<size_t>(i) * kClasses + j] = -1.0f;
    }
  };
  for (int round = 0; round < kRounds; ++round) {
    w = w0;
    std::fill(mom.begin(), mom.end(), 0.0);
    std::fill(vel.begin(), vel.end(), 0.0);
    std::vector<uint8_t> round_success(m, 0);
    for (int t = 0; t < cfg.steps; ++t) {
      for (size_t at = 0; at < kAll; ++at) image[at] = static_cast<float>((std::tanh(w[at]) + 1.0) / 2.0);
      TEMPERED_TRY(net.logit_vjp(image.data(), m, 1, seeds, dx.data(), z.data()));
      const double b1t = 1.0 - std::pow(cfg.beta1, t + 1), b2t = 1.0 - std::pow(cfg.beta2, t + 1);
      for (int k = 0; k < m; ++k) {
        const size_t base = static_cast<size_t>(k) * kPixels;
        const float* zk = &z[static_cast<size_t>(k) * kClasses];
        if (succeeds(zk, kClasses, y[k], kappa)) {
          round_success[k] = 1;
          double l2sq = 0.0;
          for (int p = 0; p < kPixels; ++p) {
            const double d = static_cast<double>(image[base + p]) - static_cast<double>(x[base + p]);
            l2sq += d * d;
          }
          if (l2sq < best_l2sq[k]) {
            const int i = active[k];
            best_l2sq[k] = l2sq;
            std::memcpy(&r.adversarial[static_cast<size_t>(i) * kPixels], &image[base], sizeof(float) * kPixels);
            r.success[i] = 1;
            r.final_prediction[i] = attack_results::argmax_row(zk, kClasses);
            r.iterations[i] = round * cfg.steps + t + 1;
            extras->l2[i] = std::sqrt(l2sq);
          }
        }
        double* dm = &dx[base];
        for (int p = 0; p < kPixels; ++p) dm[p] = hinge[k] ? dm[p] * c[k] : 0.0;
        cw_gradient(&w[base], &x[base], dm, kPixels, grad.data());
        for (int p = 0; p < kPixels; ++p) {
          const size_t at = base + p;
          mom[at] = cfg.beta1 * mom[at] + (1.0 - cfg.beta1) * grad[p];
          vel[at] = cfg.beta2 * vel[at] + (1.0 - cfg.beta2) * grad[p] * grad[p];
          w[at] -= cfg.learning_rate * (mom[at] / b1t) / (std::sqrt(vel[at] / b2t) + cfg.adam_eps);
        }
      }
    }
    for (int k = 0; k < m; ++k) {
      const size_t at = static_cast<size_t>(active[k]) * kRounds + round;
      extras->consts[at] = c[k];
      extras->round_success[at] = round_success[k];
      cw_next_const(round_success[k] != 0, &lower[k], &upper[k], &c[k]);
    }
  }
  attack_results::finish(&r, images, kPixels);
  return Status::Ok();
}

}  // namespace tempered
