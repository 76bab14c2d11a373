// The perturbations of Algorithm 2's sweep that need a forward pass, listed the same way by
// every sweep (the CPU's windowed one, native/cpu/sweep.cpp, and the network's full forward
// passes, native/core/network.cpp). Candidate c < P sets every channel of position c to 1,
// c >= P sets position c - P to 0 (P positions). Fills losses [n][2P] for the rest: NaN where
// skip[i][p] is set, the base loss where the position is already at the target; the listed
// ones get NaN until the sweep computes them.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tempered {

struct SweepWork {
  std::vector<int32_t> image, candidate;
};

inline SweepWork list_sweep_work(const float* images, int n, int positions, int channels, const uint8_t* skip,
                                 const double* base_losses, double* losses) {
  SweepWork work;
  const size_t in_size = static_cast<size_t>(positions) * channels;
  for (int i = 0; i < n; ++i) {
    const float* x = images + static_cast<size_t>(i) * in_size;
    for (int p = 0; p < positions; ++p) {
      const bool skipped = skip != nullptr && skip[static_cast<size_t>(i) * positions + p] != 0;
      for (int t = 0; t < 2; ++t) {
        const int candidate = t == 0 ? p : positions + p;
        const float target = t == 0 ? 1.0f : 0.0f;
        double& out = losses[static_cast<size_t>(i) * 2 * positions + candidate];
        bool at_target = true;
        for (int ch = 0; ch < channels; ++ch) at_target = at_target && x[p * channels + ch] == target;
        if (skipped) {
          out = std::nan("");
        } else if (at_target) {
          out = base_losses[i];
        } else {
          out = std::nan("");  // filled by the sweep
          work.image.push_back(i);
          work.candidate.push_back(candidate);
        }
      }
    }
  }
  return work;
}

}  // namespace tempered
