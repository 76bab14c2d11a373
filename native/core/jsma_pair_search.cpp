// JSMA's pair search: over every pair i < j of the search domain, alpha = a_i + a_j and
// beta = b_i + b_j; a pair is admissible when alpha > 0 and beta < 0 (NaN never is), and
// the admissible pair with the largest alpha * |beta| wins, the first in (i, j) order on
// ties. O(count^2) per call; the inner loop is a plain running maximum over j.
#include "attack.h"

namespace tempered {

bool jsma_best_pair(const double* a, const double* b, int count, int* first, int* second) {
  double best = -1.0;  // admissible products are >= 0
  int best_i = -1, best_j = -1;
  for (int i = 0; i + 1 < count; ++i) {
    const double ai = a[i], bi = b[i];
    double row_best = -1.0;
    int row_j = -1;
    for (int j = i + 1; j < count; ++j) {
      const double alpha = ai + a[j], beta = bi + b[j];
      const double v = (alpha > 0.0 && beta < 0.0) ? alpha * -beta : -1.0;
      if (v > row_best) {
        row_best = v;
        row_j = j;
      }
    }
    if (row_best > best) {
      best = row_best;
      best_i = i;
      best_j = row_j;
    }
  }
  if (best_i < 0) return false;
  *first = best_i;
  *second = best_j;
  return true;
}

}  // namespace tempered
