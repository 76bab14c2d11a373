// Small pieces shared by the attacks of the literature (JSMA, PGD/FGSM, APGD, Square, C&W):
// the argmax of a logit row, choosing the samples to attack, and filling an AttackResults
// before and after an attack.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

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

// Classifies every original (its initial and final prediction; the clean logits in
// *clean_logits where asked for) and lists in *active, in order, the samples to attack,
// marking them attacked: those classified correctly and, where `targets` is given, whose
// target is not their label.
inline Status select_attacked(Network& net, const float* images, const int32_t* labels, const int32_t* targets, int n,
                              AttackResults* r, std::vector<int>* active, std::vector<float>* clean_logits = nullptr) {
  const int classes = net.classes();
  std::vector<float> own;
  std::vector<float>& logits = clean_logits ? *clean_logits : own;
  logits.assign(static_cast<size_t>(n) * classes, 0.0f);
  TEMPERED_TRY(net.predict(images, n, logits.data()));
  active->clear();
  for (int i = 0; i < n; ++i) {
    r->initial_prediction[i] = r->final_prediction[i] = argmax_row(&logits[static_cast<size_t>(i) * classes], classes);
    if (r->initial_prediction[i] != labels[i] || (targets && targets[i] == labels[i])) continue;
    r->attacked[i] = 1;
    active->push_back(i);
  }
  return Status::Ok();
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
