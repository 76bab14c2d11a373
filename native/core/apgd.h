// APGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
// diverse parameter-free attacks"), L-infinity, batched over samples (native/core/apgd.cpp;
// docs/algorithms.md has the exact definition and every choice). Per run of N steps from a
// seeded random start x^0 = clip01(x + (2u - 1) eps):
//   z^{k+1} = P(x^k + eta sign(grad f(x^k))),
//   x^{k+1} = z^{k+1} for k = 0, else P(x^k + 0.75 (z^{k+1} - x^k) + 0.25 (x^k - x^{k-1})),
// eta starting at 2 eps; at each checkpoint w_j (apgd_checkpoints) eta halves and the iterate
// becomes x_max (the iterate of highest loss so far) when fewer than 75% of the steps since
// the last checkpoint raised the loss, or when eta was not halved at the last checkpoint and
// f_max has not grown since. P is the projection on the eps-ball within [0, 1], in float32.
// Losses: the cross-entropy of LossSpec (apgd-ce), DLR and targeted DLR (temperature-free).
// A sample stops at its first misclassified iterate (success, whatever class it lands in);
// otherwise `restarts` runs (apgd-t: per target, over the top `target_classes` other classes
// of the clean logits) from fresh random starts, each only while every earlier one failed.
#pragma once

#include <cstdint>
#include <vector>

#include "attack.h"
#include "network.h"
#include "tempered/attack_loss.h"

namespace tempered {

enum class ApgdLoss : int { kCe = 0, kDlr = 1, kDlrTargeted = 2 };

struct ApgdConfig {
  ApgdLoss loss = ApgdLoss::kCe;
  LossSpec spec;  // kCe: the cross-entropy at spec.temperature and spec.precision
  float epsilon = 0.3f;
  int steps = 100;         // N, steps per run
  int restarts = 1;        // runs per target (apgd-ce, apgd-dlr: runs)
  int target_classes = 9;  // kDlrTargeted: targets per sample, 1..classes-1
  uint32_t seed = 0;
};

// Random starts: run r of a sample draws pixel p as counter_uniform(s_r, kStreamApgdStart,
// key, p) with s_r = counter_bits(seed, kStreamApgdRun, r, 0).
constexpr uint32_t kStreamApgdStart = 41;
constexpr uint32_t kStreamApgdRun = 42;

// The checkpoints of N steps: w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), in exact hundredths; the distinct values
// with 0 < w_j < N, ascending (w_j = N would decide nothing: no step follows it).
std::vector<int> apgd_checkpoints(int steps);

// The step-size decisions of one run, fed the loss of every iterate in order (x^0 first).
class ApgdSchedule {
 public:
  explicit ApgdSchedule(const std::vector<int>* checkpoints) : checkpoints_(checkpoints) {}
  void start(double f0);
  struct Decision {
    bool new_max = false;  // this iterate is the new x_max
    bool halve = false;    // checkpoint reached, a condition holds: halve eta, continue from x_max
  };
  // Iterate j >= 1 was evaluated with loss f.
  Decision observe(int j, double f);
  double f_max() const { return f_max_; }

 private:
  const std::vector<int>* checkpoints_;
  size_t next_ = 0;    // index of the next checkpoint
  int last_w_ = 0;     // the last checkpoint (w_0 = 0)
  int increases_ = 0;  // steps since last_w_ that raised the loss
  double f_prev_ = 0;  // loss of the current iterate (f_max after a restart from x_max)
  double f_max_ = 0;
  double f_max_at_last_ = 0;  // f_max at the last checkpoint
  bool reduced_last_ = false;
};

// The DLR loss of one logit row (target < 0) or the targeted DLR towards `target`, in double
// from the float32 logits, and its gradient w.r.t. the logits when dz is not null:
//   DLR   = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12),
//   DLR-t = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12),
// pi the classes sorted by logit, descending, ties by lower class first.
double dlr_loss(const float* z, int classes, int label, int target, double* dz);

// Per image: the loss APGD follows, its input gradient and the logits (native/core/apgd.cpp).
// kCe: Network::input_gradient under cfg.spec; DLR: Network::logit_vjp with dDLR/dz as seed.
// targets: per image (kDlrTargeted only; ignored otherwise).
Status apgd_loss_gradient(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                          const ApgdConfig& cfg, double* grad, double* loss, float* logits);

// results: iterations = steps taken over every run (0: the first random start succeeded);
// linf; saliency_zero = the first run's first gradient was all zero; path empty; the
// adversarial image is the first misclassified iterate, else the last run's x_max.
Status run_apgd(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
                const ApgdConfig& cfg, AttackResults* out);

}  // namespace tempered
