// Algorithms 1-4 of Song (2017), batched over samples (docs/algorithms.md):
//  1: saliency = dL/dx once; repeatedly set the pixel with the largest remaining positive
//     entry to 1 (stops, failed, when no positive entry remains);
//  2: saliency = |L(x with p := 1) - L(x)| (S1) and |L(x with p := 0) - L(x)| (S2) once;
//     repeatedly take the largest remaining entry of S1 or S2 and set that pixel to 1 or 0;
//  3: like 1, largest |dL/dx|, pixel set to 1 if the entry is positive, else 0;
//  4: like 2, with S1 and S2 recomputed after every modified pixel.
// Ties: candidates ordered S1 in raster order then S2 in raster order (for 1 and 3: raster
// order); the first maximum wins; a modified pixel is never chosen again; NaN ranks lowest.
// After each modification the model classifies the image; success = prediction != label.
// Only samples the model classifies correctly at the start are attacked.
#pragma once

#include <cstdint>
#include <vector>

#include "network.h"
#include "tempered/attack_loss.h"

namespace tempered {

struct AttackConfig {
  int algorithm = 2;  // 1..4
  int budget = 100;   // pixels, 1..784
  LossSpec spec;
  bool want_saliency = false;  // return each sample's first saliency map
};

struct AttackResults {
  int n = 0;
  std::vector<uint8_t> attacked;    // 1 when the model classified the sample correctly
  std::vector<uint8_t> success;     // prediction != label within the budget
  std::vector<int32_t> iterations;  // pixels chosen (the paper's i); on success, the pixels it took
  std::vector<int32_t> l0;          // pixels whose value actually differs from the original
  std::vector<int32_t> initial_prediction;
  std::vector<int32_t> final_prediction;
  std::vector<uint8_t> saliency_zero;  // every candidate entry of the (first) saliency map was exactly 0
  std::vector<float> adversarial;      // [n][784], the image when the attack ended
  std::vector<int32_t> path;     // [n][budget]: chosen candidates (p: set to 1, 784 + p: set to 0), -1 after the end
  std::vector<double> saliency;  // [n][1568] when asked: alg 1/3 use the first 784 (dL/dx)
  std::vector<float> linf;       // max_p |adversarial - original| (PGD and FGSM)
};

Status run_attack(Network& net, const float* images, const int32_t* labels, int n, const AttackConfig& cfg,
                  AttackResults* out);

// JSMA (Papernot et al. 2016), targeted, theta = +1, pairs of pixels (native/core/jsma.cpp).
// F is softmax(z / T) (JSMA-F) or the logits z (JSMA-Z). Each iteration: a = dF_t/dx and
// b = sum_{j != t} dF_j/dx over the search domain G (pixels below 1, never chosen before);
// the pair p < q with alpha = a_p + a_q > 0 and beta = b_p + b_q < 0 maximising
// alpha * |beta| (first in (p, q) raster order on ties) is set to 1. Stops when the model
// predicts t (success), when no pair is admissible or |G| < 2, or after budget / 2 pairs.
// Samples misclassified at the start, or whose target is their label, are not attacked.
// Results: iterations = pixels changed (2 per pair); path [n][budget] = the pixels in order;
// saliency_zero = a and b were exactly zero over G at the first iteration.
struct JsmaConfig {
  bool on_logits = false;    // JSMA-Z when true, JSMA-F otherwise
  float temperature = 1.0f;  // of the softmax (JSMA-F)
  int budget = 112;          // pixels, 2..784: floor(784 * 0.145 / 2) pairs by default
};

Status run_jsma(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                const JsmaConfig& cfg, AttackResults* out);

// The pair search of one JSMA iteration over the `count` pixels of the search domain, given
// in raster order by their a and b: the positions first < second of the best pair, or false
// when no pair is admissible (native/core/jsma_pair_search.cpp).
bool jsma_best_pair(const double* a, const double* b, int count, int* first, int* second);

// L-infinity PGD (Madry et al. 2018) and FGSM (Goodfellow et al. 2015) (native/core/pgd.cpp):
//   x_0 = clip01(x + U(-eps, eps)) (random start; else x_0 = x),
//   x_{k+1} = min(max(x_k + step * sign(dL/dx(x_k)), max(x - eps, 0)), min(x + eps, 1)),
// in float32, sign(0) = sign(NaN) = 0. The uniform draw of pixel p of a sample is
// counter_uniform(seed, kStreamPgdStart, key, p), so it depends on the sample's key (its
// index in the data set), not on how samples are batched. A sample stops at the first
// misclassified iterate (success; iterations = the steps taken, 0 when the random start
// alone succeeded) or after `steps` steps. saliency_zero = the first gradient was all zero.
struct PgdConfig {
  LossSpec spec;
  float epsilon = 0.3f;
  int steps = 40;
  float step_size = 0.01f;
  bool random_start = true;
  uint32_t seed = 0;
};

constexpr uint32_t kStreamPgdStart = 40;

Status run_pgd(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
               const PgdConfig& cfg, AttackResults* out);

}  // namespace tempered
