// Carlini & Wagner (2017, "Towards evaluating the robustness of neural networks") L2,
// untargeted (native/core/cw_l2.cpp; docs/algorithms.md has every choice):
//   x'(w) = (tanh(w) + 1) / 2, w_0 = atanh((2x - 1)(1 - 1e-6)) (so that x = 0 and 1 are finite),
//   f(w) = ||x'(w) - x||_2^2 + c * max(z_y(x') - max_{j != y} z_j(x'), -kappa),
// minimised by Adam (Kingma & Ba: bias-corrected moments, eps added to sqrt(v_hat)) for
// `steps` steps per constant c, every round starting again from w_0 with fresh moments.
// Each step evaluates the network at the float32 image x'(w_t) (one forward and one backward
// pass, Network::logit_vjp), keeps it when it succeeds (argmax of z with z_y + kappa is not y)
// with a smaller L2 than the best so far over every round, then updates w. Binary search on c
// from `initial_const` (lower 0, upper 1e10): a round with a success sets upper = min(upper, c),
// c = (lower + upper) / 2; one without sets lower = max(lower, c), c = upper < 1e10 ?
// (lower + upper) / 2 : 10 c. No randomness; no early abort.
#pragma once

#include <cstdint>
#include <vector>

#include "attack.h"
#include "network.h"

namespace tempered {

struct CwL2Config {
  int steps = 1000;      // Adam steps per constant, 1..100000
  int search_steps = 9;  // constants tried, 1..100
  double learning_rate = 0.01;
  double initial_const = 1e-3;
  double confidence = 0.0;  // kappa >= 0
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8;
};

// The next bounds and constant of the binary search after a round with constant *c.
void cw_next_const(bool success, double* lower, double* upper, double* c);

// The objective's gradient with respect to w of one image, given the gradient of the loss
// term's margin with respect to the image (dmargin, already times c; zero when the hinge is
// flat) (both [pixels]): (2 (x' - x) + dmargin) * (1 - tanh(w)^2) / 2.
void cw_gradient(const double* w, const float* x, const double* dmargin, int pixels, double* grad);

// What C&W reports besides AttackResults: l2 [n] = ||adversarial - original||_2 (0 when no
// step succeeded); per sample and round, the constant used and whether some step of the
// round succeeded ([n][search_steps]; rounds a sample did not run: attacked = 0).
struct CwL2Extras {
  std::vector<double> l2;
  std::vector<double> consts;
  std::vector<uint8_t> round_success;
};

// Results: iterations = gradient evaluations (over all rounds, 1-based) up to the best image,
// 0 when none succeeded; adversarial = the best image (the original when none succeeded); linf.
Status run_cw_l2(Network& net, const float* images, const int32_t* labels, int n, const CwL2Config& cfg,
                 AttackResults* out, CwL2Extras* extras);

}  // namespace tempered
