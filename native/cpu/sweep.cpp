// sweep: Algorithm 2's 2 x 784 perturbed losses per image, computed incrementally.
//
// A pixel (r, c) reaches only a window of each layer: rows/cols [r-2, r] of conv1, [r-4, r]
// of conv2, half of that after pooling, and so on. Each task takes a group of perturbations
// of one image and, for each, recomputes only those windows in a private copy of the
// image's activations (with the same kernels as the full forward, so every value is
// bit-identical to a full forward pass), stops early when a pooling window comes out
// unchanged, runs the dense layers on the whole group at once, and restores the windows.
// A pixel already at the target value costs nothing: its loss is the base loss.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu_backend.h"
#include "tempered/network_shape.h"

namespace tempered {
namespace cpu {

namespace {

using namespace net;

constexpr int kGroup = 16;          // perturbations per task (and per dense-layer batch)
constexpr int kImagesPerPass = 64;  // images whose base activations are held at once

struct Span {
  int lo, hi;  // inclusive
};
inline Span conv_out(Span in, int out_size) { return {std::max(0, in.lo - 2), std::min(out_size - 1, in.hi)}; }
inline Span pool_out(Span in) { return {in.lo / 2, in.hi / 2}; }

struct PackedConv {
  std::vector<float> w, b;
  int k_pad = 0;
  void pack(const ConvLayer& l, const float* weight, const float* bias) {
    k_pad = round_up(l.out_c, 16);
    w.assign(static_cast<size_t>(9) * l.in_c * k_pad, 0.0f);
    b.assign(k_pad, 0.0f);
    pack_conv_weights(weight, l.out_c, l.in_c, k_pad, w.data());
    std::copy(bias, bias + l.out_c, b.begin());
  }
};

// Base activations of up to kImagesPerPass images (NHWC, as the network's forward).
struct BaseActivations {
  std::vector<float> a1, a2, p1, a3, a4, p2;
  std::vector<uint8_t> arg1, arg2;
  std::vector<float> flat, h1, h2, z;
};

constexpr int kA1 = 26 * 26 * 32, kA2 = 24 * 24 * 32, kP1 = 12 * 12 * 32, kA3 = 10 * 10 * 64, kA4 = 8 * 8 * 64,
              kP2 = 4 * 4 * 64;

// Per-thread working copy of one image's activations.
struct Workspace {
  uint64_t generation = 0;
  int image = -1;
  float img[kPixels];
  std::vector<float> a1 = std::vector<float>(kA1), a2 = std::vector<float>(kA2), p1 = std::vector<float>(kP1),
                     a3 = std::vector<float>(kA3), a4 = std::vector<float>(kA4), p2 = std::vector<float>(kP2);
  std::vector<float> feats = std::vector<float>(kGroup * kFlatFeatures), h1 = std::vector<float>(kGroup * kHidden),
                     h2 = std::vector<float>(kGroup * kHidden), z = std::vector<float>(kGroup * kClasses);
};
thread_local Workspace t_ws;
std::atomic<uint64_t> g_generation{0};

// Copies rows x cols x c of an [h][w][c] plane from src to dst.
void copy_window(const float* src, float* dst, int w, int c, Span rows, Span cols) {
  const size_t run = static_cast<size_t>(cols.hi - cols.lo + 1) * c;
  for (int y = rows.lo; y <= rows.hi; ++y) {
    const size_t off = (static_cast<size_t>(y) * w + cols.lo) * c;
    std::memcpy(dst + off, src + off, run * sizeof(float));
  }
}

bool window_equal(const float* a, const float* b, int w, int c, Span rows, Span cols) {
  const size_t run = static_cast<size_t>(cols.hi - cols.lo + 1) * c;
  for (int y = rows.lo; y <= rows.hi; ++y) {
    const size_t off = (static_cast<size_t>(y) * w + cols.lo) * c;
    if (std::memcmp(a + off, b + off, run * sizeof(float)) != 0) return false;
  }
  return true;
}

// 2x2 max pooling of a window, the same comparisons as maxpool2x2_forward.
void pool_window(const float* in, int in_w, int c, float* out, int out_w, Span rows, Span cols) {
  for (int oy = rows.lo; oy <= rows.hi; ++oy)
    for (int ox = cols.lo; ox <= cols.hi; ++ox) {
      const float* p00 = in + ((2 * oy) * in_w + 2 * ox) * c;
      const float* p01 = p00 + c;
      const float* p10 = p00 + in_w * c;
      const float* p11 = p10 + c;
      float* o = out + (oy * out_w + ox) * c;
      for (int ch = 0; ch < c; ++ch) {
        float best = p00[ch];
        if (p01[ch] > best) best = p01[ch];
        if (p10[ch] > best) best = p10[ch];
        if (p11[ch] > best) best = p11[ch];
        o[ch] = best;
      }
    }
}

}  // namespace

Status CpuBackend::sweep(const SweepArgs& a) {
  const KernelTable& kt = *kernels_;
  const float* params = a.params;
  auto param = [&](int id) { return params + kParams[id].offset; };
  PackedConv c1, c2, c3, c4;
  c1.pack(kConv1, param(kConv1W), param(kConv1B));
  c2.pack(kConv2, param(kConv2W), param(kConv2B));
  c3.pack(kConv3, param(kConv3W), param(kConv3B));
  c4.pack(kConv4, param(kConv4W), param(kConv4B));

  BaseActivations base;
  const int pass = std::min(a.n, kImagesPerPass);
  base.a1.resize(static_cast<size_t>(pass) * kA1);
  base.a2.resize(static_cast<size_t>(pass) * kA2);
  base.p1.resize(static_cast<size_t>(pass) * kP1);
  base.a3.resize(static_cast<size_t>(pass) * kA3);
  base.a4.resize(static_cast<size_t>(pass) * kA4);
  base.p2.resize(static_cast<size_t>(pass) * kP2);
  base.arg1.resize(static_cast<size_t>(pass) * kP1);
  base.arg2.resize(static_cast<size_t>(pass) * kP2);
  base.flat.resize(static_cast<size_t>(pass) * kFlatFeatures);
  base.h1.resize(static_cast<size_t>(pass) * kHidden);
  base.h2.resize(static_cast<size_t>(pass) * kHidden);
  base.z.resize(static_cast<size_t>(pass) * kClasses);

  for (int first = 0; first < a.n; first += kImagesPerPass) {
    const int m = std::min(kImagesPerPass, a.n - first);
    const float* images = a.images + static_cast<size_t>(first) * kPixels;
    const int32_t* labels = a.labels + first;
    const uint8_t* skip = a.skip ? a.skip + static_cast<size_t>(first) * kPixels : nullptr;
    double* losses = a.losses + static_cast<size_t>(first) * 2 * kPixels;
    double* base_losses = a.base_losses + first;

    // The unperturbed images through the ordinary (batched) forward pass.
    auto shape = [&](const ConvLayer& l) { return Conv3x3Shape{m, l.in_h, l.in_w, l.in_c, l.out_c}; };
    TEMPERED_TRY(conv3x3_forward(shape(kConv1), images, param(kConv1W), param(kConv1B), base.a1.data(), true));
    TEMPERED_TRY(conv3x3_forward(shape(kConv2), base.a1.data(), param(kConv2W), param(kConv2B), base.a2.data(), true));
    TEMPERED_TRY(maxpool2x2_forward(m, 24, 24, 32, base.a2.data(), base.p1.data(), base.arg1.data()));
    TEMPERED_TRY(conv3x3_forward(shape(kConv3), base.p1.data(), param(kConv3W), param(kConv3B), base.a3.data(), true));
    TEMPERED_TRY(conv3x3_forward(shape(kConv4), base.a3.data(), param(kConv4W), param(kConv4B), base.a4.data(), true));
    TEMPERED_TRY(maxpool2x2_forward(m, 8, 8, 64, base.a4.data(), base.p2.data(), base.arg2.data()));
    TEMPERED_TRY(hwc_to_chw(m, 4, 4, 64, base.p2.data(), base.flat.data()));
    TEMPERED_TRY(
        dense_forward({m, kFlatFeatures, kHidden}, base.flat.data(), param(kFc1W), param(kFc1B), base.h1.data(), true));
    TEMPERED_TRY(
        dense_forward({m, kHidden, kHidden}, base.h1.data(), param(kFc2W), param(kFc2B), base.h2.data(), true));
    TEMPERED_TRY(
        dense_forward({m, kHidden, kClasses}, base.h2.data(), param(kFc3W), param(kFc3B), base.z.data(), false));
    for (int i = 0; i < m; ++i)
      base_losses[i] = attack_loss(&base.z[static_cast<size_t>(i) * kClasses], kClasses, labels[i], a.spec, nullptr);

    // The perturbations that need a forward pass: (image, candidate), candidate = p (set to 1)
    // or 784 + p (set to 0). The rest get the base loss, or NaN when skipped.
    std::vector<int32_t> work_image, work_candidate;
    for (int i = 0; i < m; ++i) {
      const float* x = images + static_cast<size_t>(i) * kPixels;
      for (int p = 0; p < kPixels; ++p) {
        const bool skipped = skip != nullptr && skip[static_cast<size_t>(i) * kPixels + p] != 0;
        for (int t = 0; t < 2; ++t) {
          const int candidate = t == 0 ? p : kPixels + p;
          const float target = t == 0 ? 1.0f : 0.0f;
          double& out = losses[static_cast<size_t>(i) * 2 * kPixels + candidate];
          if (skipped) {
            out = std::nan("");
          } else if (x[p] == target) {
            out = base_losses[i];
          } else {
            out = std::nan("");  // filled below
            work_image.push_back(i);
            work_candidate.push_back(candidate);
          }
        }
      }
    }

    // Tasks: runs of up to kGroup perturbations of the same image.
    std::vector<int32_t> task_start;
    for (size_t w = 0; w < work_image.size(); ++w) {
      if (task_start.empty() || work_image[w] != work_image[w - 1] ||
          static_cast<int>(w - static_cast<size_t>(task_start.back())) >= kGroup)
        task_start.push_back(static_cast<int32_t>(w));
    }
    task_start.push_back(static_cast<int32_t>(work_image.size()));
    const uint64_t generation = ++g_generation;
    const ConvWindow w1{28, 28, 1, 32, c1.k_pad, nullptr, c1.w.data(), c1.b.data(), nullptr, true};
    const ConvWindow w2{26, 26, 32, 32, c2.k_pad, nullptr, c2.w.data(), c2.b.data(), nullptr, true};
    const ConvWindow w3{12, 12, 32, 64, c3.k_pad, nullptr, c3.w.data(), c3.b.data(), nullptr, true};
    const ConvWindow w4{10, 10, 64, 64, c4.k_pad, nullptr, c4.w.data(), c4.b.data(), nullptr, true};

    pool().parallel_for(static_cast<int64_t>(task_start.size()) - 1, [&](int64_t task) {
      Workspace& ws = t_ws;
      const int begin = task_start[task], end = task_start[task + 1];
      const int image = work_image[begin];
      const float* b_a1 = &base.a1[static_cast<size_t>(image) * kA1];
      const float* b_a2 = &base.a2[static_cast<size_t>(image) * kA2];
      const float* b_p1 = &base.p1[static_cast<size_t>(image) * kP1];
      const float* b_a3 = &base.a3[static_cast<size_t>(image) * kA3];
      const float* b_a4 = &base.a4[static_cast<size_t>(image) * kA4];
      const float* b_p2 = &base.p2[static_cast<size_t>(image) * kP2];
      const float* x = images + static_cast<size_t>(image) * kPixels;
      if (ws.generation != generation || ws.image != image) {
        std::memcpy(ws.img, x, sizeof(ws.img));
        std::copy(b_a1, b_a1 + kA1, ws.a1.begin());
        std::copy(b_a2, b_a2 + kA2, ws.a2.begin());
        std::copy(b_p1, b_p1 + kP1, ws.p1.begin());
        std::copy(b_a3, b_a3 + kA3, ws.a3.begin());
        std::copy(b_a4, b_a4 + kA4, ws.a4.begin());
        std::copy(b_p2, b_p2 + kP2, ws.p2.begin());
        ws.generation = generation;
        ws.image = image;
      }
      double* out = losses + static_cast<size_t>(image) * 2 * kPixels;
      int pending[kGroup];  // candidates whose features are in ws.feats
      int count = 0;
      for (int w = begin; w < end; ++w) {
        const int candidate = work_candidate[w];
        const int p = candidate % kPixels, r = p / kImageSide, c = p % kImageSide;
        ws.img[p] = candidate < kPixels ? 1.0f : 0.0f;
        const Span r1 = conv_out({r, r}, 26), c1s = conv_out({c, c}, 26);
        const Span r2 = conv_out(r1, 24), c2s = conv_out(c1s, 24);
        const Span r3 = pool_out(r2), c3s = pool_out(c2s);
        ConvWindow cw = w1;
        cw.x = ws.img;
        cw.y = ws.a1.data();
        kt.conv3x3_window(cw, 0, r1.lo, r1.hi + 1, c1s.lo, c1s.hi + 1);
        cw = w2;
        cw.x = ws.a1.data();
        cw.y = ws.a2.data();
        kt.conv3x3_window(cw, 0, r2.lo, r2.hi + 1, c2s.lo, c2s.hi + 1);
        pool_window(ws.a2.data(), 24, 32, ws.p1.data(), 12, r3, c3s);
        bool reaches_dense = false;
        Span r4{0, -1}, c4s{0, -1}, r5{0, -1}, c5s{0, -1}, r6{0, -1}, c6s{0, -1};
        if (!window_equal(ws.p1.data(), b_p1, 12, 32, r3, c3s)) {
          r4 = conv_out(r3, 10), c4s = conv_out(c3s, 10);
          r5 = conv_out(r4, 8), c5s = conv_out(c4s, 8);
          r6 = pool_out(r5), c6s = pool_out(c5s);
          cw = w3;
          cw.x = ws.p1.data();
          cw.y = ws.a3.data();
          kt.conv3x3_window(cw, 0, r4.lo, r4.hi + 1, c4s.lo, c4s.hi + 1);
          cw = w4;
          cw.x = ws.a3.data();
          cw.y = ws.a4.data();
          kt.conv3x3_window(cw, 0, r5.lo, r5.hi + 1, c5s.lo, c5s.hi + 1);
          pool_window(ws.a4.data(), 8, 64, ws.p2.data(), 4, r6, c6s);
          if (!window_equal(ws.p2.data(), b_p2, 4, 64, r6, c6s)) {
            // Flatten in PyTorch's (C, H, W) order, as hwc_to_chw does.
            float* f = &ws.feats[static_cast<size_t>(count) * kFlatFeatures];
            for (int q = 0; q < 16; ++q)
              for (int ch = 0; ch < 64; ++ch) f[ch * 16 + q] = ws.p2[q * 64 + ch];
            pending[count++] = candidate;
            reaches_dense = true;
          }
        }
        if (!reaches_dense) out[candidate] = base_losses[image];
        // Restore the base activations.
        ws.img[p] = x[p];
        copy_window(b_a1, ws.a1.data(), 26, 32, r1, c1s);
        copy_window(b_a2, ws.a2.data(), 24, 32, r2, c2s);
        copy_window(b_p1, ws.p1.data(), 12, 32, r3, c3s);
        if (r4.hi >= r4.lo) {
          copy_window(b_a3, ws.a3.data(), 10, 64, r4, c4s);
          copy_window(b_a4, ws.a4.data(), 8, 64, r5, c5s);
          copy_window(b_p2, ws.p2.data(), 4, 64, r6, c6s);
        }
      }
      if (count > 0) {
        kt.dense_forward_block({count, kFlatFeatures, kHidden}, ws.feats.data(), param(kFc1W), param(kFc1B),
                               ws.h1.data(), true, 0, count, 0, kHidden);
        kt.dense_forward_block({count, kHidden, kHidden}, ws.h1.data(), param(kFc2W), param(kFc2B), ws.h2.data(), true,
                               0, count, 0, kHidden);
        kt.dense_forward_block({count, kHidden, kClasses}, ws.h2.data(), param(kFc3W), param(kFc3B), ws.z.data(), false,
                               0, count, 0, kClasses);
        for (int g = 0; g < count; ++g)
          out[pending[g]] =
              attack_loss(&ws.z[static_cast<size_t>(g) * kClasses], kClasses, labels[image], a.spec, nullptr);
      }
    });
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
