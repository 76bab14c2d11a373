// The L-infinity Square attack (Andriushchenko, Croce, Flammarion, Hein 2020, "Square Attack:
// a query-efficient black-box adversarial attack via random search"): random search on the
// margin loss m(x) = z_y(x) - max_{j != y} z_j(x) of the logits, forward passes only
// (native/core/square_attack.cpp; docs/algorithms.md has every choice).
//   x_1 = clip01(x + eps * stripes), stripes = one sign per (column, channel) (vertical stripes);
//   query k = 2, 3, ...: s = side(p(k)), a random s x s window, each of its channels set to
//   x +- eps (one sign per channel, clipped to [0, 1]), the rest of the image the best so far;
//   kept when its margin is strictly below the best margin.
// A sample stops when the best image is misclassified (success) or after `queries` forward
// passes of perturbed images (the stripes included; the clean pass that decides whether the
// sample is attacked is not counted). Random draws are keyed by (seed, sample key), never by
// batch position, so the result does not depend on how samples are batched.
#pragma once

#include <cstdint>

#include "attack.h"
#include "network.h"

namespace tempered {

struct SquareConfig {
  float epsilon = 0.3f;
  int queries = 5000;   // 1..10^6
  float p_init = 0.8f;  // (0, 1]: the share of the image's pixels the first windows cover
  uint32_t seed = 0;
};

// Streams of counter_rng: the stripes (lo = key, index = column * channels + channel); the
// per-query sub-seed (lo = key, index = query); under the sub-seed, the window (lo = 0,
// index 0: row, 1: column) and the signs (lo = draw, index = channel).
constexpr uint32_t kStreamSquareStripes = 48;
constexpr uint32_t kStreamSquareQuery = 49;
constexpr uint32_t kStreamSquareWindow = 50;
constexpr uint32_t kStreamSquareSign = 51;
// Draws of the signs before a window that equals the best image's is tried anyway.
constexpr int kSquareSignDraws = 32;

// The share p of pixels for query index `iteration` (0 for the first query after the stripes)
// of a budget of `queries`: p_init halved at the authors' checkpoints of a 10,000-query run.
double square_fraction(double p_init, int iteration, int queries);
// The window side for p on an h x w image: round(sqrt(p h w)), within [1, max(min(h, w) - 1, 1)].
int square_side(double p, int h, int w);

// Results: iterations = queries used; linf; adversarial = the best image.
Status run_square(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
                  const SquareConfig& cfg, AttackResults* out);

}  // namespace tempered
