// Algorithms 1-4 of Song (2017), batched over samples (PAPER-NOTES.md):
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
  std::vector<uint8_t> attacked;          // 1 when the model classified the sample correctly
  std::vector<uint8_t> success;           // prediction != label within the budget
  std::vector<int32_t> iterations;        // pixels chosen (the paper's i); on success, the pixels it took
  std::vector<int32_t> l0;                // pixels whose value actually differs from the original
  std::vector<int32_t> initial_prediction;
  std::vector<int32_t> final_prediction;
  std::vector<uint8_t> saliency_zero;     // every candidate entry of the (first) saliency map was exactly 0
  std::vector<float> adversarial;         // [n][784], the image when the attack ended
  std::vector<int32_t> path;              // [n][budget]: chosen candidates (p: set to 1, 784 + p: set to 0), -1 after the end
  std::vector<double> saliency;           // [n][1568] when asked: alg 1/3 use the first 784 (dL/dx)
};

Status run_attack(Network& net, const float* images, const int32_t* labels, int n, const AttackConfig& cfg,
                  AttackResults* out);

}  // namespace tempered
