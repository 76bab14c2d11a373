// sweep: Algorithm 2's 2 x positions perturbed losses per image, computed incrementally, for
// any network of the architecture plan.
//
// A position (r, c) reaches only a window of each layer before the flatten: a k x k 'valid'
// convolution widens it by k - 1 rows and columns towards the top-left of its output, a pad
// shifts it, a 2x2 pooling halves it, a ReLU or dropout (inference: the identity) keeps it.
// Each task takes a group of perturbations of one image and, for each, carries its window
// through those layers, recomputing only the window in a private copy of the image's
// activations (with the same kernels as the full forward, so every value is bit-identical to
// a full forward pass; a Winograd convolution recomputes the whole 2x2 tiles its window
// touches, as the full forward computes them), stops early when a pooling window comes out
// unchanged, runs the flatten and the dense part on the whole group at once, and restores
// the windows.
// A position already at the target value costs nothing: its loss is the base loss.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "conv_generic.h"
#include "cpu_backend.h"
#include "tempered/sweep_work.h"
#include "winograd_f2x2_3x3.h"

namespace tempered {
namespace cpu {

namespace {

constexpr int kGroup = 16;                       // perturbations per task (and per dense-layer batch)
constexpr int kImagesPerPass = 64;               // images whose base activations are held at once
constexpr size_t kBaseFloats = size_t{1} << 24;  // bounds the base activations of one pass

struct Span {
  int lo, hi;  // inclusive; empty when hi < lo
  bool empty() const { return hi < lo; }
};

// A convolution of the conv part, its weights packed as conv3x3_forward packs them: for the
// direct kernel, or transformed for Winograd where conv3x3_forward chooses it.
struct SweepStep {
  std::vector<float> packed_w, packed_b;  // kConv, direct
  int k_pad = 0;
  bool winograd = false;
  WinogradKernel wk;
};

// The shape the full forward gives conv3x3_forward for step s (Network::predict's).
Conv3x3Shape forward_shape(const Step& s, int n) {
  Conv3x3Shape c{n, s.in.h, s.in.w, s.in.c, s.out.c, s.kernel};
  c.fast = true;
  return c;
}

// Per-thread working copy of one image's activations (conv part), and the dense part's
// group buffers.
struct Workspace {
  uint64_t generation = 0;
  int image = -1;
  std::vector<float> img;
  std::vector<std::vector<float>> act;  // one per conv-part step (empty for dropouts)
  std::vector<float> feats, h0, h1;
  std::vector<Span> rows, cols;
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

// The pad's window: the input's values inside the zero border.
void pad_window(const float* in, int in_w, int c, int p, float* out, int out_w, Span rows, Span cols) {
  const size_t run = static_cast<size_t>(cols.hi - cols.lo + 1) * c;
  for (int y = rows.lo; y <= rows.hi; ++y)
    std::memcpy(out + (static_cast<size_t>(y + p) * out_w + cols.lo + p) * c,
                in + (static_cast<size_t>(y) * in_w + cols.lo) * c, run * sizeof(float));
}

void relu_window(const float* in, int w, int c, float* out, Span rows, Span cols) {
  for (int y = rows.lo; y <= rows.hi; ++y)
    for (int x = cols.lo; x <= cols.hi; ++x)
      for (int ch = 0; ch < c; ++ch) {
        const size_t i = (static_cast<size_t>(y) * w + x) * c + ch;
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
      }
}

// The window of step s's output that an input window reaches.
void advance(const Step& s, Span* rows, Span* cols) {
  switch (s.kind) {
    case StepKind::kPad:
      *rows = {rows->lo + s.pad, rows->hi + s.pad};
      *cols = {cols->lo + s.pad, cols->hi + s.pad};
      break;
    case StepKind::kConv:
      *rows = {std::max(0, rows->lo - (s.kernel - 1)), std::min(s.out.h - 1, rows->hi)};
      *cols = {std::max(0, cols->lo - (s.kernel - 1)), std::min(s.out.w - 1, cols->hi)};
      break;
    case StepKind::kMaxPool:
      *rows = {rows->lo / 2, rows->hi / 2};
      *cols = {cols->lo / 2, cols->hi / 2};
      break;
    default:
      break;  // ReLU, dropout: the same window
  }
}

}  // namespace

Status CpuBackend::sweep(const SweepArgs& a) {
  const ArchPlan& plan = *a.arch;
  const KernelTable& kt = *kernels_;
  const float* params = a.params;
  auto param = [&](int id) { return params + plan.params[id].offset; };
  const int positions = plan.positions(), channels = plan.input.c, in_size = plan.input_size();
  const int classes = plan.classes;
  const int n_steps = static_cast<int>(plan.steps.size());
  int flatten = 0;  // index of the flatten step: the conv part is steps [0, flatten)
  while (plan.steps[flatten].kind != StepKind::kFlatten) ++flatten;

  std::vector<SweepStep> conv_part(flatten);
  size_t per_image = 0, widest_dense = 0;
  for (int i = 0; i < n_steps; ++i) {
    const Step& s = plan.steps[i];
    if (i < flatten) {
      if (s.kind != StepKind::kDropout) per_image += s.out.size();
      if (s.kind == StepKind::kConv && s.kernel == 3 && winograd_forward_chosen(forward_shape(s, 1))) {
        SweepStep& cs = conv_part[i];
        cs.winograd = true;
        TEMPERED_TRY(winograd_forward_kernel(pool(), forward_shape(s, 1), param(s.weight), param(s.bias), &cs.wk));
      } else if (s.kind == StepKind::kConv) {
        SweepStep& cs = conv_part[i];
        cs.k_pad = round_up(s.out.c, 16);
        cs.packed_w.assign(static_cast<size_t>(s.kernel) * s.kernel * s.in.c * cs.k_pad, 0.0f);
        cs.packed_b.assign(cs.k_pad, 0.0f);
        if (s.kernel == 3)
          pack_conv_weights(param(s.weight), s.out.c, s.in.c, cs.k_pad, cs.packed_w.data());
        else
          pack_conv_weights_generic(param(s.weight), s.out.c, s.in.c, s.kernel, cs.k_pad, cs.packed_w.data());
        std::copy(param(s.bias), param(s.bias) + s.out.c, cs.packed_b.begin());
      }
    } else {
      widest_dense = std::max(widest_dense, s.out.size());
    }
  }
  const size_t flat_size = plan.steps[flatten].out.size();
  const int per_pass = static_cast<int>(
      std::max<size_t>(1, std::min<size_t>(kImagesPerPass, kBaseFloats / std::max<size_t>(1, per_image))));

  // Base activations of up to per_pass images, one buffer per conv-part step (a dropout's
  // output is its input in inference), and the logits.
  const int pass = std::min(a.n, per_pass);
  std::vector<std::vector<float>> base(flatten);
  std::vector<std::vector<uint8_t>> base_arg(flatten);
  for (int i = 0; i < flatten; ++i) {
    const Step& s = plan.steps[i];
    if (s.kind == StepKind::kDropout) continue;
    base[i].resize(static_cast<size_t>(pass) * s.out.size());
    if (s.kind == StepKind::kMaxPool) base_arg[i].resize(base[i].size());
  }
  std::vector<float> tail0(static_cast<size_t>(pass) * std::max(flat_size, widest_dense)),
      tail1(static_cast<size_t>(pass) * std::max(flat_size, widest_dense));
  // Where step i's base output is, for image 0 of the pass (dropouts: their input's).
  std::vector<const float*> base_out(flatten, nullptr);

  for (int first = 0; first < a.n; first += per_pass) {
    const int m = std::min(per_pass, a.n - first);
    const float* images = a.images + static_cast<size_t>(first) * in_size;
    const int32_t* labels = a.labels + first;
    const uint8_t* skip = a.skip ? a.skip + static_cast<size_t>(first) * positions : nullptr;
    double* losses = a.losses + static_cast<size_t>(first) * 2 * positions;
    double* base_losses = a.base_losses + first;

    // The unperturbed images through the ordinary (batched) forward operations.
    const float* in = images;
    for (int i = 0; i < flatten; ++i) {
      const Step& s = plan.steps[i];
      float* out = base[i].data();
      switch (s.kind) {
        case StepKind::kPad:
          TEMPERED_TRY(pad_hwc(m, s.in.h, s.in.w, s.in.c, s.pad, in, out));
          break;
        case StepKind::kConv:
          TEMPERED_TRY(conv3x3_forward(forward_shape(s, m), in, param(s.weight), param(s.bias), out, s.relu));
          break;
        case StepKind::kRelu:
          TEMPERED_TRY(relu_forward(in, out, static_cast<size_t>(m) * s.out.size()));
          break;
        case StepKind::kMaxPool:
          TEMPERED_TRY(maxpool2x2_forward(m, s.in.h, s.in.w, s.in.c, in, out, base_arg[i].data()));
          break;
        default:  // dropout
          out = const_cast<float*>(in);
          break;
      }
      base_out[i] = out;
      in = out;
    }
    {
      const Step& f = plan.steps[flatten];
      TEMPERED_TRY(hwc_to_chw(m, f.in.h, f.in.w, f.in.c, in, tail0.data()));
      float *cur = tail0.data(), *other = tail1.data();
      for (int i = flatten + 1; i < n_steps; ++i) {
        const Step& s = plan.steps[i];
        if (s.kind == StepKind::kDense) {
          TEMPERED_TRY(dense_forward({m, s.in.c, s.out.c}, cur, param(s.weight), param(s.bias), other, s.relu));
          std::swap(cur, other);
        } else if (s.kind == StepKind::kRelu) {
          TEMPERED_TRY(relu_forward(cur, other, static_cast<size_t>(m) * s.out.size()));
          std::swap(cur, other);
        }
      }
      for (int i = 0; i < m; ++i)
        base_losses[i] = attack_loss(cur + static_cast<size_t>(i) * classes, classes, labels[i], a.spec, nullptr);
    }

    // The perturbations that need a forward pass; the rest get the base loss, or NaN when skipped.
    const SweepWork work = list_sweep_work(images, m, positions, channels, skip, base_losses, losses);
    const std::vector<int32_t>&work_image = work.image, &work_candidate = work.candidate;

    // Tasks: runs of up to kGroup perturbations of the same image.
    std::vector<int32_t> task_start;
    for (size_t w = 0; w < work_image.size(); ++w) {
      if (task_start.empty() || work_image[w] != work_image[w - 1] ||
          static_cast<int>(w - static_cast<size_t>(task_start.back())) >= kGroup)
        task_start.push_back(static_cast<int32_t>(w));
    }
    task_start.push_back(static_cast<int32_t>(work_image.size()));
    const uint64_t generation = ++g_generation;
    std::atomic<bool> out_of_memory{false};

    pool().parallel_for(static_cast<int64_t>(task_start.size()) - 1, [&](int64_t task) {
      Workspace& ws = t_ws;
      const int begin = task_start[task], end = task_start[task + 1];
      const int image = work_image[begin];
      const float* x = images + static_cast<size_t>(image) * in_size;
      // The base output of step i for this image (a dropout's is its input's).
      auto base_of = [&](int i) -> const float* {
        while (i >= 0 && plan.steps[i].kind == StepKind::kDropout) --i;
        if (i < 0) return x;
        return base_out[i] + static_cast<size_t>(image) * plan.steps[i].out.size();
      };
      if (ws.generation != generation || ws.image != image) {
        if (ws.generation != generation) {
          ws.act.resize(flatten);
          for (int i = 0; i < flatten; ++i)
            ws.act[i].resize(plan.steps[i].kind == StepKind::kDropout ? 0 : plan.steps[i].out.size());
          ws.feats.resize(static_cast<size_t>(kGroup) * flat_size);
          ws.h0.resize(static_cast<size_t>(kGroup) * std::max<size_t>(1, widest_dense));
          ws.h1.resize(ws.h0.size());
          ws.rows.resize(flatten);
          ws.cols.resize(flatten);
        }
        ws.img.assign(x, x + in_size);
        for (int i = 0; i < flatten; ++i)
          if (!ws.act[i].empty()) std::copy(base_of(i), base_of(i) + ws.act[i].size(), ws.act[i].begin());
        ws.generation = generation;
        ws.image = image;
      }
      // The workspace copy of step i's output (a dropout's is its input's).
      auto ws_of = [&](int i) -> float* {
        while (i >= 0 && plan.steps[i].kind == StepKind::kDropout) --i;
        return i < 0 ? ws.img.data() : ws.act[i].data();
      };
      double* out = losses + static_cast<size_t>(image) * 2 * positions;
      int pending[kGroup];  // candidates whose features are in ws.feats
      int count = 0;
      for (int w = begin; w < end; ++w) {
        const int candidate = work_candidate[w];
        const int p = candidate % positions, r = p / plan.input.w, c = p % plan.input.w;
        const float target = candidate < positions ? 1.0f : 0.0f;
        for (int ch = 0; ch < channels; ++ch) ws.img[p * channels + ch] = target;
        Span rows{r, r}, cols{c, c};
        int reached = 0;  // conv-part steps recomputed: [0, reached)
        bool changed = true;
        for (int i = 0; i < flatten && changed; ++i) {
          const Step& s = plan.steps[i];
          const Shape3 in_shape = s.in;
          const float* src = ws_of(i - 1);
          const Span in_rows = rows, in_cols = cols;
          advance(s, &rows, &cols);
          const bool winograd = s.kind == StepKind::kConv && conv_part[i].winograd;
          if (winograd) {  // whole tiles: rows and columns from even to odd
            rows = {rows.lo & ~1, std::min(s.out.h - 1, rows.hi | 1)};
            cols = {cols.lo & ~1, std::min(s.out.w - 1, cols.hi | 1)};
          }
          ws.rows[i] = rows;
          ws.cols[i] = cols;
          reached = i + 1;
          switch (s.kind) {
            case StepKind::kPad:
              pad_window(src, in_shape.w, in_shape.c, s.pad, ws.act[i].data(), s.out.w, in_rows, in_cols);
              break;
            case StepKind::kConv: {
              const SweepStep& cs = conv_part[i];
              if (winograd) {
                const WinogradArgs wa =
                    winograd_forward_args(forward_shape(s, 1), src, cs.wk, ws.act[i].data(), s.relu);
                if (!winograd_forward_tiles(kt, wa, 0, rows.lo / 2, rows.hi / 2 + 1, cols.lo / 2, cols.hi / 2 + 1).ok())
                  out_of_memory = true;
                break;
              }
              const ConvWindow cw{in_shape.h, in_shape.w,         in_shape.c,         s.out.c,          cs.k_pad,
                                  src,        cs.packed_w.data(), cs.packed_b.data(), ws.act[i].data(), s.relu};
              if (s.kernel == 3)
                kt.conv3x3_window(cw, 0, rows.lo, rows.hi + 1, cols.lo, cols.hi + 1);
              else
                conv_generic_window(cw, s.kernel, 0, rows.lo, rows.hi + 1, cols.lo, cols.hi + 1);
              break;
            }
            case StepKind::kRelu:
              relu_window(src, s.out.w, s.out.c, ws.act[i].data(), rows, cols);
              break;
            case StepKind::kMaxPool:
              pool_window(src, in_shape.w, in_shape.c, ws.act[i].data(), s.out.w, rows, cols);
              changed = !window_equal(ws.act[i].data(), base_of(i), s.out.w, s.out.c, rows, cols);
              break;
            default:
              break;  // dropout: nothing to compute
          }
        }
        if (changed) {
          // Flatten in PyTorch's (C, H, W) order, as hwc_to_chw does.
          const Shape3 fs = plan.steps[flatten].in;
          const float* last = ws_of(flatten - 1);
          float* f = &ws.feats[static_cast<size_t>(count) * flat_size];
          const int hw = fs.h * fs.w;
          for (int q = 0; q < hw; ++q)
            for (int ch = 0; ch < fs.c; ++ch)
              f[static_cast<size_t>(ch) * hw + q] = last[static_cast<size_t>(q) * fs.c + ch];
          pending[count++] = candidate;
        } else {
          out[candidate] = base_losses[image];
        }
        // Restore the base activations.
        for (int ch = 0; ch < channels; ++ch) ws.img[p * channels + ch] = x[p * channels + ch];
        for (int i = 0; i < reached; ++i) {
          const Step& s = plan.steps[i];
          if (s.kind == StepKind::kDropout) continue;
          copy_window(base_of(i), ws.act[i].data(), s.out.w, s.out.c, ws.rows[i], ws.cols[i]);
        }
      }
      if (count > 0) {
        const float* cur = ws.feats.data();
        float* bufs[2] = {ws.h0.data(), ws.h1.data()};
        int which = 0;
        for (int i = flatten + 1; i < n_steps; ++i) {
          const Step& s = plan.steps[i];
          float* dst = bufs[which];
          if (s.kind == StepKind::kDense) {
            kt.dense_forward_block({count, s.in.c, s.out.c}, cur, param(s.weight), param(s.bias), dst, s.relu, 0, count,
                                   0, s.out.c);
          } else if (s.kind == StepKind::kRelu) {
            const size_t total = static_cast<size_t>(count) * s.out.size();
            for (size_t k = 0; k < total; ++k) dst[k] = cur[k] > 0.0f ? cur[k] : 0.0f;
          } else {
            continue;  // dropout: the identity in inference
          }
          cur = dst;
          which ^= 1;
        }
        for (int g = 0; g < count; ++g)
          out[pending[g]] =
              attack_loss(cur + static_cast<size_t>(g) * classes, classes, labels[image], a.spec, nullptr);
      }
    });
    if (out_of_memory) return Status::OutOfMemory("sweep: Winograd scratch");
  }
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
