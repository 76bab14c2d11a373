// Small pieces shared by the attacks of the literature (JSMA, PGD/FGSM): the argmax of a
// logit row, and filling an AttackResults before and after an attack.
#pragma once

#include <cmath>
#include <cstdint>

#include "attack.h"

namespace tempered {
namespace attack_results {

inline int argmax_row(const float* z, int classes) {
  int best = 0;
  for (int j = 1; j < classes; ++j)
    if (z[j] > z[best]) best = j;
  return best;
}

// Every sample unattacked, the adversarial images the originals, paths of `path_len` -1s.
inline void start(AttackResults* r, const float* images, int n, int input_size, int path_len) {
  r->n = n;
  r->attacked.assign(n, 0);
  r->success.assign(n, 0);
  r->iterations.assign(n, 0);
  r->l0.assign(n, 0);
  r->initial_prediction.assign(n, -1);
  r->final_prediction.assign(n, -1);
  r->saliency_zero.assign(n, 0);
  r->adversarial.assign(images, images + static_cast<size_t>(n) * input_size);
  r->path.assign(static_cast<size_t>(n) * path_len, -1);
  r->linf.assign(n, 0.0f);
}

// l0 and linf of every sample's final image against its original.
inline void finish(AttackResults* r, const float* images, int input_size) {
  for (int i = 0; i < r->n; ++i) {
    int changed = 0;
    float largest = 0.0f;
    for (int p = 0; p < input_size; ++p) {
      const size_t at = static_cast<size_t>(i) * input_size + p;
      changed += r->adversarial[at] != images[at];
      largest = std::fmax(largest, std::fabs(r->adversarial[at] - images[at]));
    }
    r->l0[i] = changed;
    r->linf[i] = largest;
  }
}

}  // namespace attack_results
}  // namespace tempered
