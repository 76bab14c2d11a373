// The Square attack (square_attack.h has the definition). Per query and batch of active
// samples: each sample's candidate built on the host, one forward pass of the batch
// (Network::predict, any backend), then the margins compared in double.
#include "square_attack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attack_results.h"
#include "tempered/counter_rng.h"

namespace tempered {

namespace {

// z_y - max_{j != y} z_j, in double from the float32 logits (the difference is exact).
double margin_of(const float* z, int classes, int y) {
  double other = -INFINITY;
  for (int j = 0; j < classes; ++j)
    if (j != y) other = std::max(other, static_cast<double>(z[j]));
  return static_cast<double>(z[y]) - other;
}

float clip01(float v) { return std::fmin(std::fmax(v, 0.0f), 1.0f); }

// x + eps or x - eps, clipped to [0, 1], by the draw u in [0, 1): u < 1/2 is minus.
float signed_step(float x, float eps, float u) { return clip01(u < 0.5f ? x - eps : x + eps); }

// floor(u * count) for u in [0, 1), in double (exact: u has 24 bits, count < 2^7).
int uniform_int(float u, int count) { return std::min(static_cast<int>(static_cast<double>(u) * count), count - 1); }

}  // namespace

double square_fraction(double p_init, int iteration, int queries) {
  // The authors' schedule is written for 10,000 queries; the iteration is rescaled to it
  // (integer division: floor(iteration * 10000 / queries)).
  const int64_t it = static_cast<int64_t>(iteration) * 10000 / queries;
  static const int kEnds[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (int end : kEnds)
    if (it > end) p /= 2.0;
  return p;
}

int square_side(double p, int h, int w) {
  const int s = static_cast<int>(std::round(std::sqrt(p * h * w)));
  const int largest = std::max(std::min(h, w) - 1, 1);
  return std::min(std::max(s, 1), largest);
}

Status run_square(Network& net, const float* images, const int32_t* labels, const uint32_t* keys, int n,
                  const SquareConfig& cfg, AttackResults* out) {
  if (!(cfg.epsilon > 0.0f && cfg.epsilon <= 1.0f)) return Status::InvalidArgument("epsilon must be in (0, 1]");
  if (cfg.queries < 1 || cfg.queries > 1000000) return Status::InvalidArgument("queries must be in 1..1000000");
  if (!(cfg.p_init > 0.0f && cfg.p_init <= 1.0f)) return Status::InvalidArgument("pInit must be in (0, 1]");
  const Shape3 shape = net.plan().input;
  const int kPixels = net.input_size(), kClasses = net.classes(), h = shape.h, w = shape.w, c = shape.c;
  AttackResults& r = *out;
  attack_results::start(&r, images, n, kPixels, 0);
  std::vector<int> active;
  TEMPERED_TRY(attack_results::select_attacked(net, images, labels, nullptr, n, &r, &active));
  for (int i : active) {
    // Query 1: vertical stripes, one sign per (column, channel) for every row.
    const float* x = &images[static_cast<size_t>(i) * kPixels];
    float* best = &r.adversarial[static_cast<size_t>(i) * kPixels];
    for (int col = 0; col < w; ++col)
      for (int ch = 0; ch < c; ++ch) {
        const float u = counter_uniform(cfg.seed, kStreamSquareStripes, keys[i], static_cast<uint32_t>(col * c + ch));
        for (int row = 0; row < h; ++row) {
          const int at = (row * w + col) * c + ch;
          best[at] = signed_step(x[at], cfg.epsilon, u);
        }
      }
  }
  std::vector<double> best_margin(n, 0.0);
  std::vector<float> batch, batch_logits;
  for (int query = 1; !active.empty(); ++query) {
    const int m = static_cast<int>(active.size());
    batch.resize(static_cast<size_t>(m) * kPixels);
    batch_logits.resize(static_cast<size_t>(m) * kClasses);
    for (int k = 0; k < m; ++k) {
      const int i = active[k];
      const size_t base = static_cast<size_t>(i) * kPixels;
      float* cand = &batch[static_cast<size_t>(k) * kPixels];
      std::memcpy(cand, &r.adversarial[base], sizeof(float) * kPixels);
      if (query == 1) continue;  // the stripes themselves
      // Query q >= 2 is the authors' iteration q - 2 of a budget of `queries`.
      const double p = square_fraction(cfg.p_init, query - 2, cfg.queries);
      const int s = square_side(p, h, w);
      const uint32_t sub = counter_bits(cfg.seed, kStreamSquareQuery, keys[i], static_cast<uint32_t>(query));
      const int row0 = uniform_int(counter_uniform(sub, kStreamSquareWindow, 0, 0), h - s + 1);
      const int col0 = uniform_int(counter_uniform(sub, kStreamSquareWindow, 0, 1), w - s + 1);
      const float* x = &images[base];
      // Signs per channel, drawn again while the window would equal the best image's (a
      // query that cannot change anything; the authors' code redraws too).
      for (int draw = 0; draw < kSquareSignDraws; ++draw) {
        bool changed = false;
        for (int ch = 0; ch < c; ++ch) {
          const float u =
              counter_uniform(sub, kStreamSquareSign, static_cast<uint32_t>(draw), static_cast<uint32_t>(ch));
          for (int row = row0; row < row0 + s; ++row)
            for (int col = col0; col < col0 + s; ++col) {
              const int at = (row * w + col) * c + ch;
              cand[at] = signed_step(x[at], cfg.epsilon, u);
              changed = changed || cand[at] != r.adversarial[base + at];
            }
        }
        if (changed) break;
      }
    }
    TEMPERED_TRY(net.predict(batch.data(), m, batch_logits.data()));
    std::vector<int> next;
    for (int k = 0; k < m; ++k) {
      const int i = active[k];
      const float* z = &batch_logits[static_cast<size_t>(k) * kClasses];
      const double margin = margin_of(z, kClasses, labels[i]);
      r.iterations[i] = query;
      if (query == 1 || margin < best_margin[i]) {
        best_margin[i] = margin;
        r.final_prediction[i] = attack_results::argmax_row(z, kClasses);
        if (query > 1)
          std::memcpy(&r.adversarial[static_cast<size_t>(i) * kPixels], &batch[static_cast<size_t>(k) * kPixels],
                      sizeof(float) * kPixels);
      }
      if (r.final_prediction[i] != labels[i]) {
        r.success[i] = 1;
        continue;
      }
      if (query < cfg.queries) next.push_back(i);
    }
    active.swap(next);
  }
  attack_results::finish(&r, images, kPixels);
  return Status::Ok();
}

}  // namespace tempered
