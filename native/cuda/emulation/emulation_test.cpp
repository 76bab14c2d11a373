// The CUDA backend's kernels and host code, run on the CPU through the host emulation
// (cuda_emulation.h), against the CPU backend: every operation on awkward shapes, the whole
// network (trace, training steps) through native/core/network.cpp, the sweep against full
// forward passes, determinism, and error handling. Needs no GPU; emulation/run.sh builds
// and runs it. What it cannot show: timing, memory coalescing, and races that only real
// concurrent threads expose (test/cuda-parity.test.ts covers the device itself).
//
// Tolerance, as test/cuda-parity.test.ts: |cuda - cpu| <= atol + rtol * |cpu| with
// atol = 1e-5 * max|cpu| over the tensor and rtol = 1e-4.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../core/apgd.h"
#include "../../core/cw_l2.h"
#include "../../core/network.h"
#include "../../core/square_attack.h"
#include "../../cpu/cpu_backend.h"
#include "../cuda_backend.h"
#include "tempered/arch.h"

using namespace tempered;

namespace {

int g_failures = 0;
int g_checks = 0;

void expect(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

void expect_ok(const Status& s, const std::string& what) {
  expect(s.ok(), what + (s.ok() ? "" : ": " + s.message()));
}

// Worst |a - b| / (atol + rtol |b|) over the tensor; prints the worst element.
bool close(const std::string& name, const float* got, const float* ref, size_t count, double atol_scale = 1e-5,
           double rtol = 1e-4) {
  double scale = 0;
  for (size_t i = 0; i < count; ++i) scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  const double atol = atol_scale * scale;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const double allowed = atol + rtol * std::fabs(static_cast<double>(ref[i]));
    const double ratio = err == 0 ? 0 : (allowed == 0 || std::isnan(err) ? INFINITY : err / allowed);
    if (ratio > worst || std::isnan(err)) {
      worst = std::isnan(err) ? INFINITY : ratio;
      at = i;
    }
  }
  const bool ok = worst <= 1.0;
  std::printf("  %-40s %s worst ratio %.3g at %zu (cuda %.9g cpu %.9g, max|cpu| %.3g)\n", name.c_str(), ok ? "ok  " : "FAIL",
              worst, at, count ? got[at] : 0.0f, count ? ref[at] : 0.0f, scale);
  ++g_checks;
  if (!ok) ++g_failures;
  return ok;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Device buffers on either backend, filled from / read into host vectors.
struct Buf {
  Backend* b = nullptr;
  void* p = nullptr;
  size_t bytes = 0;
  Buf(Backend* be, size_t n) : b(be), bytes(n) {
    Status s = b->alloc(n, &p);
    if (!s.ok()) std::printf("alloc failed: %s\n", s.message().c_str());
  }
  ~Buf() { b->release(p); }
  template <typename T>
  T* as() const { return static_cast<T*>(p); }
};

template <typename T>
std::vector<T> read(Backend* b, const Buf& buf) {
  std::vector<T> out(buf.bytes / sizeof(T));
  expect_ok(b->download(out.data(), buf.p, buf.bytes), "download");
  return out;
}

template <typename T>
void write(Backend* b, Buf& buf, const std::vector<T>& v) {
  expect_ok(b->upload(buf.p, v.data(), sizeof(T) * v.size()), "upload");
}

// One input on both backends.
struct Pair {
  Buf c, g;
  template <typename T>
  Pair(Backend* cpu, Backend* gpu, const std::vector<T>& v) : c(cpu, sizeof(T) * v.size()), g(gpu, sizeof(T) * v.size()) {
    write(cpu, c, v);
    write(gpu, g, v);
  }
  Pair(Backend* cpu, Backend* gpu, size_t bytes) : c(cpu, bytes), g(gpu, bytes) {
    // Fill outputs with garbage so that an element the kernel forgets to write shows.
    std::vector<uint8_t> junk(bytes, 0x7f);
    write(cpu, c, junk);
    write(gpu, g, junk);
  }
};

void test_ops(Backend* cpu, Backend* gpu) {
  std::printf("operations\n");
  // Convolutions on the network's shapes and on awkward ones (channels not multiples of 16/32,
  // output channels > 64, several split-K chunks).
  const Conv3x3Shape shapes[] = {
      {2, 28, 28, 1, 32}, {3, 26, 26, 32, 32}, {2, 12, 12, 32, 64}, {2, 10, 10, 64, 64},
      {2, 7, 9, 3, 5},    {1, 5, 6, 17, 70},   {5, 24, 24, 32, 32} /* 2,880 pixels: 2 weight chunks */,
      {1, 9, 8, 1, 3},
  };
  int idx = 0;
  for (const Conv3x3Shape& s : shapes) {
    const std::string tag = "conv[" + std::to_string(idx++) + "] n" + std::to_string(s.n) + " " + std::to_string(s.in_h) +
                            "x" + std::to_string(s.in_w) + "x" + std::to_string(s.in_c) + "->" + std::to_string(s.out_c);
    const size_t xs = static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c;
    const size_t ys = static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c;
    const size_t ws = static_cast<size_t>(s.out_c) * s.in_c * 9;
    Pair x(cpu, gpu, random_floats(xs, 1 + idx));
    Pair w(cpu, gpu, random_floats(ws, 2 + idx, -0.3f, 0.3f));
    Pair bias(cpu, gpu, random_floats(s.out_c, 3 + idx));
    Pair dy(cpu, gpu, random_floats(ys, 4 + idx));
    for (int relu = 0; relu < 2; ++relu) {
      Pair y(cpu, gpu, sizeof(float) * ys);
      expect_ok(cpu->conv3x3_forward(s, x.c.as<float>(), w.c.as<float>(), bias.c.as<float>(), y.c.as<float>(), relu), "cpu conv fwd");
      expect_ok(gpu->conv3x3_forward(s, x.g.as<float>(), w.g.as<float>(), bias.g.as<float>(), y.g.as<float>(), relu), "cuda conv fwd");
      close(tag + (relu ? " forward+relu" : " forward"), read<float>(gpu, y.g).data(), read<float>(cpu, y.c).data(), ys);
    }
    Pair dx(cpu, gpu, sizeof(float) * xs);
    expect_ok(cpu->conv3x3_backward_data(s, dy.c.as<float>(), w.c.as<float>(), dx.c.as<float>()), "cpu conv bwd data");
    expect_ok(gpu->conv3x3_backward_data(s, dy.g.as<float>(), w.g.as<float>(), dx.g.as<float>()), "cuda conv bwd data");
    close(tag + " backward data", read<float>(gpu, dx.g).data(), read<float>(cpu, dx.c).data(), xs);
    Pair dw(cpu, gpu, sizeof(float) * ws), db(cpu, gpu, sizeof(float) * s.out_c);
    expect_ok(cpu->conv3x3_backward_weights(s, x.c.as<float>(), dy.c.as<float>(), dw.c.as<float>(), db.c.as<float>()), "cpu bwd w");
    expect_ok(gpu->conv3x3_backward_weights(s, x.g.as<float>(), dy.g.as<float>(), dw.g.as<float>(), db.g.as<float>()), "cuda bwd w");
    const std::vector<float> dw1 = read<float>(gpu, dw.g);
    close(tag + " backward weights", dw1.data(), read<float>(cpu, dw.c).data(), ws);
    close(tag + " backward bias", read<float>(gpu, db.g).data(), read<float>(cpu, db.c).data(), s.out_c);
    // Same inputs, same bits.
    expect_ok(gpu->conv3x3_backward_weights(s, x.g.as<float>(), dy.g.as<float>(), dw.g.as<float>(), db.g.as<float>()), "cuda bwd w 2");
    const std::vector<float> dw2 = read<float>(gpu, dw.g);
    expect(std::memcmp(dw1.data(), dw2.data(), sizeof(float) * ws) == 0, tag + " weight gradient reproducible");
  }

  // Dense layers, including several split chunks over the batch (n = 300 > 256).
  const DenseShape dshapes[] = {{4, 1024, 200}, {3, 200, 200}, {5, 200, 10}, {7, 37, 45}, {300, 20, 7}, {2, 3, 70}};
  idx = 0;
  for (const DenseShape& s : dshapes) {
    const std::string tag = "dense[" + std::to_string(idx++) + "] n" + std::to_string(s.n) + " " + std::to_string(s.in) +
                            "->" + std::to_string(s.out);
    const size_t xs = static_cast<size_t>(s.n) * s.in, ys = static_cast<size_t>(s.n) * s.out,
                 ws = static_cast<size_t>(s.out) * s.in;
    Pair x(cpu, gpu, random_floats(xs, 10 + idx));
    Pair w(cpu, gpu, random_floats(ws, 11 + idx, -0.2f, 0.2f));
    Pair bias(cpu, gpu, random_floats(s.out, 12 + idx));
    Pair dy(cpu, gpu, random_floats(ys, 13 + idx));
    for (int relu = 0; relu < 2; ++relu) {
      Pair y(cpu, gpu, sizeof(float) * ys);
      expect_ok(cpu->dense_forward(s, x.c.as<float>(), w.c.as<float>(), bias.c.as<float>(), y.c.as<float>(), relu), "cpu dense");
      expect_ok(gpu->dense_forward(s, x.g.as<float>(), w.g.as<float>(), bias.g.as<float>(), y.g.as<float>(), relu), "cuda dense");
      close(tag + (relu ? " forward+relu" : " forward"), read<float>(gpu, y.g).data(), read<float>(cpu, y.c).data(), ys);
    }
    Pair dx(cpu, gpu, sizeof(float) * xs);
    expect_ok(cpu->dense_backward_data(s, dy.c.as<float>(), w.c.as<float>(), dx.c.as<float>()), "cpu dense bd");
    expect_ok(gpu->dense_backward_data(s, dy.g.as<float>(), w.g.as<float>(), dx.g.as<float>()), "cuda dense bd");
    close(tag + " backward data", read<float>(gpu, dx.g).data(), read<float>(cpu, dx.c).data(), xs);
    Pair dw(cpu, gpu, sizeof(float) * ws), db(cpu, gpu, sizeof(float) * s.out);
    expect_ok(cpu->dense_backward_weights(s, x.c.as<float>(), dy.c.as<float>(), dw.c.as<float>(), db.c.as<float>()), "cpu dense bw");
    expect_ok(gpu->dense_backward_weights(s, x.g.as<float>(), dy.g.as<float>(), dw.g.as<float>(), db.g.as<float>()), "cuda dense bw");
    close(tag + " backward weights", read<float>(gpu, dw.g).data(), read<float>(cpu, dw.c).data(), ws);
    close(tag + " backward bias", read<float>(gpu, db.g).data(), read<float>(cpu, db.c).data(), s.out);
  }

  // Element-wise and layout operations: exact.
  {
    const int n = 3, h = 8, w = 6, c = 5;
    const size_t count = static_cast<size_t>(n) * h * w * c;
    std::vector<float> xv = random_floats(count, 21);
    for (size_t i = 0; i < count; i += 7) xv[i] = 0.5f;  // ties in the pooling windows
    for (size_t i = 0; i < count; i += 11) xv[i] = -0.0f;
    Pair x(cpu, gpu, xv);
    Pair y(cpu, gpu, sizeof(float) * count / 4), arg(cpu, gpu, count / 4);
    expect_ok(cpu->maxpool2x2_forward(n, h, w, c, x.c.as<float>(), y.c.as<float>(), arg.c.as<uint8_t>()), "cpu pool");
    expect_ok(gpu->maxpool2x2_forward(n, h, w, c, x.g.as<float>(), y.g.as<float>(), arg.g.as<uint8_t>()), "cuda pool");
    expect(read<float>(cpu, y.c) == read<float>(gpu, y.g), "maxpool forward exact");
    expect(read<uint8_t>(cpu, arg.c) == read<uint8_t>(gpu, arg.g), "maxpool argmax exact");
    Pair dy(cpu, gpu, random_floats(count / 4, 22)), dx(cpu, gpu, sizeof(float) * count);
    expect_ok(cpu->maxpool2x2_backward(n, h, w, c, dy.c.as<float>(), arg.c.as<uint8_t>(), dx.c.as<float>()), "cpu pool b");
    expect_ok(gpu->maxpool2x2_backward(n, h, w, c, dy.g.as<float>(), arg.g.as<uint8_t>(), dx.g.as<float>()), "cuda pool b");
    expect(read<float>(cpu, dx.c) == read<float>(gpu, dx.g), "maxpool backward exact");

    Pair t(cpu, gpu, sizeof(float) * count), back(cpu, gpu, sizeof(float) * count);
    expect_ok(cpu->hwc_to_chw(n, h, w, c, x.c.as<float>(), t.c.as<float>()), "cpu hwc");
    expect_ok(gpu->hwc_to_chw(n, h, w, c, x.g.as<float>(), t.g.as<float>()), "cuda hwc");
    expect(read<float>(cpu, t.c) == read<float>(gpu, t.g), "hwc_to_chw exact");
    expect_ok(cpu->chw_to_hwc(n, h, w, c, t.c.as<float>(), back.c.as<float>()), "cpu chw");
    expect_ok(gpu->chw_to_hwc(n, h, w, c, t.g.as<float>(), back.g.as<float>()), "cuda chw");
    expect(read<float>(cpu, back.c) == read<float>(gpu, back.g), "chw_to_hwc exact");

    Pair g(cpu, gpu, random_floats(count, 23));
    expect_ok(cpu->relu_backward(g.c.as<float>(), x.c.as<float>(), count), "cpu relu");
    expect_ok(gpu->relu_backward(g.g.as<float>(), x.g.as<float>(), count), "cuda relu");
    expect(read<float>(cpu, g.c) == read<float>(gpu, g.g), "relu_backward exact");

    const DropoutKey key{1234, 7, 2, 0.5f};
    Pair d(cpu, gpu, sizeof(float) * count);
    expect_ok(cpu->dropout(key, n, h * w * c, x.c.as<float>(), d.c.as<float>()), "cpu dropout");
    expect_ok(gpu->dropout(key, n, h * w * c, x.g.as<float>(), d.g.as<float>()), "cuda dropout");
    expect(read<float>(cpu, d.c) == read<float>(gpu, d.g), "dropout exact");
    expect_ok(gpu->dropout(key, n, h * w * c, x.g.as<float>(), x.g.as<float>()), "cuda dropout in place");
    expect(read<float>(cpu, d.c) == read<float>(gpu, x.g), "dropout in place exact");

    std::vector<float> pv = random_floats(count, 24), gv = random_floats(count, 25), vv = random_floats(count, 26);
    Pair p(cpu, gpu, pv), gr(cpu, gpu, gv), v(cpu, gpu, vv);
    const SgdArgs sgd{0.1f, 0.5f, 0.01f};
    expect_ok(cpu->sgd_nesterov(sgd, count, p.c.as<float>(), gr.c.as<float>(), v.c.as<float>()), "cpu sgd");
    expect_ok(gpu->sgd_nesterov(sgd, count, p.g.as<float>(), gr.g.as<float>(), v.g.as<float>()), "cuda sgd");
    expect(read<float>(cpu, p.c) == read<float>(gpu, p.g), "sgd parameters exact");
    expect(read<float>(cpu, v.c) == read<float>(gpu, v.g), "sgd velocity exact");

    std::vector<int32_t> idx = {4, 0, 2, 2, 9};
    Pair ind(cpu, gpu, idx), rows(cpu, gpu, random_floats(10 * 13, 27));
    Pair out(cpu, gpu, sizeof(float) * 5 * 13);
    expect_ok(cpu->gather_rows(rows.c.p, 13 * sizeof(float), ind.c.as<int32_t>(), 5, out.c.p), "cpu gather");
    expect_ok(gpu->gather_rows(rows.g.p, 13 * sizeof(float), ind.g.as<int32_t>(), 5, out.g.p), "cuda gather");
    expect(read<float>(cpu, out.c) == read<float>(gpu, out.g), "gather_rows words exact");
    Pair out3(cpu, gpu, size_t(5 * 3));
    expect_ok(cpu->gather_rows(rows.c.p, 3, ind.c.as<int32_t>(), 5, out3.c.p), "cpu gather bytes");
    expect_ok(gpu->gather_rows(rows.g.p, 3, ind.g.as<int32_t>(), 5, out3.g.p), "cuda gather bytes");
    expect(read<uint8_t>(cpu, out3.c) == read<uint8_t>(gpu, out3.g), "gather_rows bytes exact");
  }

  // softmax_xent with labels and with soft targets, T = 1 and T = 20.
  for (float T : {1.0f, 20.0f}) {
    const int n = 9, k = 10;
    Pair z(cpu, gpu, random_floats(n * k, 31, -15.0f, 15.0f));
    std::vector<int32_t> labels(n);
    for (int i = 0; i < n; ++i) labels[i] = (i * 7) % k;
    std::vector<float> soft = random_floats(n * k, 32, 0.0f, 1.0f);
    for (int i = 0; i < n; ++i) {
      float s = 0;
      for (int j = 0; j < k; ++j) s += soft[i * k + j];
      for (int j = 0; j < k; ++j) soft[i * k + j] /= s;
    }
    Pair lab(cpu, gpu, labels), st(cpu, gpu, soft);
    for (int use_soft = 0; use_soft < 2; ++use_soft) {
      SoftmaxXentArgs ac{n, k, T, T * T, lab.c.as<int32_t>(), use_soft ? st.c.as<float>() : nullptr};
      SoftmaxXentArgs ag{n, k, T, T * T, lab.g.as<int32_t>(), use_soft ? st.g.as<float>() : nullptr};
      Pair loss(cpu, gpu, sizeof(float) * n), dz(cpu, gpu, sizeof(float) * n * k);
      expect_ok(cpu->softmax_xent(ac, z.c.as<float>(), loss.c.as<float>(), dz.c.as<float>()), "cpu xent");
      expect_ok(gpu->softmax_xent(ag, z.g.as<float>(), loss.g.as<float>(), dz.g.as<float>()), "cuda xent");
      const std::string tag = std::string("softmax_xent T=") + std::to_string(static_cast<int>(T)) + (use_soft ? " soft" : " hard");
      close(tag + " loss", read<float>(gpu, loss.g).data(), read<float>(cpu, loss.c).data(), n);
      close(tag + " dlogits", read<float>(gpu, dz.g).data(), read<float>(cpu, dz.c).data(), n * k);
    }
  }
}

// A small 3-channel network with what the paper's lacks: 'same' convolutions (one of 5 x 5),
// a ReLU after a pooling (not fused), dropout before the flatten, a class count other than 10.
ArchSpec small_colour_spec() {
  ArchSpec s;
  s.channels = 3;
  s.height = s.width = 12;
  auto layer = [](LayerKind k) {
    LayerSpec l;
    l.kind = k;
    return l;
  };
  LayerSpec c1 = layer(LayerKind::kConv), c2 = layer(LayerKind::kConv), c5 = layer(LayerKind::kConv),
            d = layer(LayerKind::kDropout), fc = layer(LayerKind::kDense), out = layer(LayerKind::kDense);
  c1.kernel = c2.kernel = 3;
  c5.kernel = 5;  // the generic convolution, 'same': a zero border of 2
  c5.filters = 6;
  c5.same = true;
  c1.filters = 8;
  c1.same = true;
  c2.filters = 12;
  d.rate = 0.25f;
  fc.units = 24;
  out.units = 7;
  s.layers = {c5, layer(LayerKind::kRelu), c1, layer(LayerKind::kRelu), layer(LayerKind::kMaxPool), layer(LayerKind::kRelu), c2,
              layer(LayerKind::kRelu), d, layer(LayerKind::kFlatten), fc, layer(LayerKind::kRelu), out};
  return s;
}

// A random valid small spec (seeded), as test/arch.test.ts draws them: 1 or 3 channels, up
// to three convolutions (3 x 3 or 5 x 5, valid or same), pools where the size is even, fused
// and standalone ReLUs, dropout, up to two hidden dense layers, 2-12 classes.
ArchSpec random_spec(uint32_t seed) {
  std::mt19937 rng(seed);
  auto u = [&]() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); };
  auto layer = [](LayerKind k) {
    LayerSpec l;
    l.kind = k;
    return l;
  };
  ArchSpec s;
  s.channels = u() < 0.5 ? 1 : 3;
  s.height = 6 + static_cast<int>(u() * 7);
  s.width = s.height + (u() < 0.3 ? 2 : 0);
  int h = s.height, w = s.width;
  const int convs = static_cast<int>(u() * 4);
  for (int i = 0; i < convs; ++i) {
    LayerSpec c = layer(LayerKind::kConv);
    c.same = u() < 0.4;
    c.kernel = u() < 0.3 ? 5 : 3;
    if (!c.same && (h < c.kernel || w < c.kernel)) break;
    c.filters = 1 + static_cast<int>(u() * 6);
    s.layers.push_back(c);
    if (!c.same) h -= c.kernel - 1, w -= c.kernel - 1;
    if (u() < 0.7) s.layers.push_back(layer(LayerKind::kRelu));
    if (h % 2 == 0 && w % 2 == 0 && h >= 2 && u() < 0.5) {
      s.layers.push_back(layer(LayerKind::kMaxPool));
      h /= 2, w /= 2;
      if (u() < 0.3) s.layers.push_back(layer(LayerKind::kRelu));
    }
    if (u() < 0.2) {
      LayerSpec d = layer(LayerKind::kDropout);
      d.rate = 0.25f;
      s.layers.push_back(d);
    }
  }
  s.layers.push_back(layer(LayerKind::kFlatten));
  if (u() < 0.3) s.layers.push_back(layer(LayerKind::kRelu));
  const int hidden = static_cast<int>(u() * 3);
  for (int i = 0; i < hidden; ++i) {
    LayerSpec d = layer(LayerKind::kDense);
    d.units = 3 + static_cast<int>(u() * 12);
    s.layers.push_back(d);
    if (u() < 0.8) s.layers.push_back(layer(LayerKind::kRelu));
  }
  LayerSpec out = layer(LayerKind::kDense);
  out.units = 2 + static_cast<int>(u() * 11);
  s.layers.push_back(out);
  return s;
}

// The whole network of `spec` on both backends from the same parameters.
void test_network(Backend* cpu, Backend* gpu, const ArchSpec& arch, const char* label) {
  std::printf("network %s\n", label);
  ArchPlan plan;
  expect_ok(plan_arch(arch, &plan), "plan");
  // kPixels: values per image; positions and channels: what the sweep perturbs.
  const int kPixels = plan.input_size(), kPositions = plan.positions(), kChannels = plan.input.c;
  const int kClasses = plan.classes;
  const size_t kTotalParams = plan.total_params;
  Network nc(cpu, plan), ng(gpu, plan);
  expect_ok(nc.allocate(), "cpu allocate");
  expect_ok(ng.allocate(), "cuda allocate");
  expect_ok(nc.init_glorot(5), "cpu init");
  expect_ok(ng.init_glorot(5), "cuda init");
  std::vector<float> pc(kTotalParams), pg(kTotalParams);
  expect_ok(nc.get_parameters(pc.data()), "cpu params");
  expect_ok(ng.get_parameters(pg.data()), "cuda params");
  expect(pc == pg, "same Glorot parameters on both backends");

  const int n = 4;
  std::vector<float> images = random_floats(static_cast<size_t>(n) * kPixels, 41, 0.0f, 1.0f);
  for (int p = 0; p < 300 && p < kPixels; ++p) images[p] = 0.0f;  // zero regions: ties in the pools
  for (int p = 0; p < 200 && p < kPixels; ++p) images[kPixels + p] = 1.0f;
  std::vector<int32_t> labels = {3 % kClasses, 1, 4 % kClasses, 1};
  std::vector<float> soft = random_floats(n * kClasses, 42, 0.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    float s = 0;
    for (int j = 0; j < kClasses; ++j) s += soft[i * kClasses + j];
    for (int j = 0; j < kClasses; ++j) soft[i * kClasses + j] /= s;
  }
  for (float T : {1.0f, 20.0f}) {
    for (int use_soft = 0; use_soft < 2; ++use_soft) {
      TrainConfig cfg;
      cfg.temperature = T;
      cfg.loss_scale = T;
      cfg.dropout_rate = 0.5f;
      cfg.dropout_seed = 9;
      Trace tc, tg;
      expect_ok(nc.trace(images.data(), labels.data(), use_soft ? soft.data() : nullptr, n, cfg, 3, &tc), "cpu trace");
      expect_ok(ng.trace(images.data(), labels.data(), use_soft ? soft.data() : nullptr, n, cfg, 3, &tg), "cuda trace");
      expect(tc.tensors.size() == tg.tensors.size(), "trace sizes");
      for (size_t i = 0; i < tc.tensors.size() && i < tg.tensors.size(); ++i) {
        const std::string tag = std::string("trace T=") + std::to_string(static_cast<int>(T)) + (use_soft ? " soft " : " hard ") +
                                tc.tensors[i].first;
        // Differences in float rounding compound through the layers (as layers.test.ts's
        // end-to-end tolerance); the per-operation checks above are the sharp ones.
        close(tag, tg.tensors[i].second.data(), tc.tensors[i].second.data(), tc.tensors[i].second.size(), 1e-4, 1e-3);
      }
    }
  }

  // Training steps from a resident data set.
  DeviceDataset dc, dg;
  const int count = 64;
  std::vector<float> dimages = random_floats(static_cast<size_t>(count) * kPixels, 43, 0.0f, 1.0f);
  std::vector<int32_t> dlabels(count);
  for (int i = 0; i < count; ++i) dlabels[i] = i % kClasses;
  for (DeviceDataset* d : {&dc, &dg}) {
    Backend* b = d == &dc ? cpu : gpu;
    d->backend = b;
    d->count = count;
    d->input_size = kPixels;
    d->classes = kClasses;
    expect_ok(d->images.allocate(b, dimages.size()), "dataset images");
    expect_ok(d->labels.allocate(b, dlabels.size()), "dataset labels");
    expect_ok(b->upload(d->images.get(), dimages.data(), sizeof(float) * dimages.size()), "upload");
    expect_ok(b->upload(d->labels.get(), dlabels.data(), sizeof(int32_t) * dlabels.size()), "upload");
  }
  std::vector<int32_t> order(16);
  for (int step = 0; step < 3; ++step) {
    for (int i = 0; i < 16; ++i) order[i] = (step * 16 + i * 5) % count;
    TrainConfig cfg;
    BatchResult rc, rg;
    expect_ok(nc.train_step(dc, order.data(), 16, cfg, step, &rc), "cpu train");
    expect_ok(ng.train_step(dg, order.data(), 16, cfg, step, &rg), "cuda train");
    const float lc = static_cast<float>(rc.loss_sum), lg = static_cast<float>(rg.loss_sum);
    close("train step " + std::to_string(step) + " loss", &lg, &lc, 1, 0, 1e-4);
  }
  expect_ok(nc.get_parameters(pc.data()), "cpu params");
  expect_ok(ng.get_parameters(pg.data()), "cuda params");
  close("parameters after 3 steps", pg.data(), pc.data(), pc.size(), 1e-4, 1e-3);

  // Input gradients, both precisions.
  for (int precision = 0; precision < 2; ++precision) {
    LossSpec spec;
    spec.precision = precision ? LossPrecision::kFloat64 : LossPrecision::kFloat32;
    spec.temperature = 20.0f;
    std::vector<double> gc(n * kPixels), gg(n * kPixels), lc(n), lg(n);
    std::vector<float> zc(n * kClasses), zg(n * kClasses);
    expect_ok(nc.input_gradient(images.data(), labels.data(), n, spec, gc.data(), lc.data(), zc.data()), "cpu grad");
    expect_ok(ng.input_gradient(images.data(), labels.data(), n, spec, gg.data(), lg.data(), zg.data()), "cuda grad");
    std::vector<float> fc(gc.begin(), gc.end()), fg(gg.begin(), gg.end());
    close(std::string("input gradient ") + (precision ? "float64" : "float32"), fg.data(), fc.data(), fc.size(), 1e-4, 1e-3);
  }

  // The sweep: against full forward passes of the perturbed images on the same backend
  // (exact), and against the CPU's incremental sweep (tolerance). Most pixels are skipped
  // to keep the emulation quick.
  for (int kind = 0; kind < 3; ++kind) {
    LossSpec spec;
    spec.loss = kind == 2 ? AttackLoss::kMargin : AttackLoss::kXent;
    spec.precision = kind == 1 ? LossPrecision::kFloat64 : LossPrecision::kFloat32;
    spec.temperature = kind == 1 ? 20.0f : 1.0f;
    const int m = 2;
    std::vector<uint8_t> skip(static_cast<size_t>(m) * kPositions, 1);
    for (int p = 0; p < kPositions; p += 23) skip[p] = 0;
    for (int p = 5; p < kPositions; p += 31) skip[kPositions + p] = 0;
    std::vector<double> sc(m * 2 * kPositions), sg(m * 2 * kPositions), bc(m), bg(m);
    expect_ok(nc.sweep(images.data(), labels.data(), skip.data(), m, spec, sc.data(), bc.data()), "cpu sweep");
    expect_ok(ng.sweep(images.data(), labels.data(), skip.data(), m, spec, sg.data(), bg.data()), "cuda sweep");
    // Perturbed images (every channel of the position) and their losses from attack_losses
    // (full forward passes).
    std::vector<float> perturbed;
    std::vector<int32_t> plabels;
    std::vector<int> where;
    int nan_mismatch = 0, base_mismatch = 0;
    for (int i = 0; i < m; ++i)
      for (int cand = 0; cand < 2 * kPositions; ++cand) {
        const int p = cand % kPositions;
        const float target = cand < kPositions ? 1.0f : 0.0f;
        const double v = sg[static_cast<size_t>(i) * 2 * kPositions + cand];
        if (skip[static_cast<size_t>(i) * kPositions + p]) {
          nan_mismatch += !std::isnan(v) || !std::isnan(sc[static_cast<size_t>(i) * 2 * kPositions + cand]);
          continue;
        }
        bool at_target = true;
        for (int ch = 0; ch < kChannels; ++ch)
          at_target = at_target && images[static_cast<size_t>(i) * kPixels + p * kChannels + ch] == target;
        if (at_target) {
          base_mismatch += v != bg[i];
          continue;
        }
        perturbed.insert(perturbed.end(), images.begin() + static_cast<size_t>(i) * kPixels,
                         images.begin() + static_cast<size_t>(i + 1) * kPixels);
        for (int ch = 0; ch < kChannels; ++ch) perturbed[perturbed.size() - kPixels + p * kChannels + ch] = target;
        plabels.push_back(labels[i]);
        where.push_back(i * 2 * kPositions + cand);
      }
    expect(nan_mismatch == 0, "sweep: NaN exactly at the skipped pixels");
    expect(base_mismatch == 0, "sweep: pixels at the target get the base loss");
    const int pn = static_cast<int>(plabels.size());
    std::vector<double> full(pn);
    std::vector<float> logits(static_cast<size_t>(pn) * kClasses);
    expect_ok(ng.attack_losses(perturbed.data(), plabels.data(), pn, spec, full.data(), logits.data()), "cuda losses");
    int exact_mismatch = 0;
    for (int j = 0; j < pn; ++j) exact_mismatch += sg[where[j]] != full[j];
    std::vector<double> base_full(m);
    std::vector<float> base_logits(m * kClasses);
    expect_ok(ng.attack_losses(images.data(), labels.data(), m, spec, base_full.data(), base_logits.data()), "base");
    for (int i = 0; i < m; ++i) exact_mismatch += bg[i] != base_full[i];
    expect(exact_mismatch == 0, "sweep equals full forward passes on the same backend (" + std::to_string(pn) +
                                    " perturbations, " + std::to_string(exact_mismatch) + " differ)");
    // The CPU's incremental sweep against the CPU's full forward passes: bit for bit.
    std::vector<double> full_cpu(pn);
    expect_ok(nc.attack_losses(perturbed.data(), plabels.data(), pn, spec, full_cpu.data(), logits.data()), "cpu losses");
    int cpu_mismatch = 0;
    for (int j = 0; j < pn; ++j) cpu_mismatch += sc[where[j]] != full_cpu[j];
    expect(cpu_mismatch == 0, "cpu sweep equals cpu full forward passes (" + std::to_string(cpu_mismatch) + " differ)");
    std::vector<float> fc, fg;
    for (int j = 0; j < pn; ++j) {
      fc.push_back(static_cast<float>(sc[where[j]]));
      fg.push_back(static_cast<float>(sg[where[j]]));
    }
    for (int i = 0; i < m; ++i) {
      fc.push_back(static_cast<float>(bc[i]));
      fg.push_back(static_cast<float>(bg[i]));
    }
    close("sweep vs cpu, loss kind " + std::to_string(kind), fg.data(), fc.data(), fc.size(), 1e-4, 1e-3);
  }
}

// APGD (native/core/apgd.cpp, core code over the backend's operations) on both backends, same
// parameters and images: its loss gradients (the DLR seeds through logit_vjp) within the
// network tolerance, then whole runs of each loss. A run follows gradient signs, so a
// gradient entry near zero whose sign the two backends' rounding decides differently moves
// one pixel by 2 eta there; the runs must agree on every sample's outcome and step count,
// and on all but a few pixels (at most 1% of them).
void test_apgd(Backend* cpu, Backend* gpu, const ArchSpec& arch, const char* label, float epsilon, int steps, int restarts) {
  std::printf("apgd %s\n", label);
  ArchPlan plan;
  expect_ok(plan_arch(arch, &plan), "plan");
  const int kPixels = plan.input_size(), kClasses = plan.classes;
  Network nc(cpu, plan), ng(gpu, plan);
  expect_ok(nc.allocate(), "cpu allocate");
  expect_ok(ng.allocate(), "cuda allocate");
  expect_ok(nc.init_glorot(7), "cpu init");
  expect_ok(ng.init_glorot(7), "cuda init");
  const int n = 6;
  const std::vector<float> images = random_floats(static_cast<size_t>(n) * kPixels, 51, 0.0f, 1.0f);
  std::vector<float> z(static_cast<size_t>(n) * kClasses);
  expect_ok(nc.predict(images.data(), n, z.data()), "cpu predict");
  std::vector<int32_t> labels(n), targets(n);
  std::vector<uint32_t> keys(n);
  for (int i = 0; i < n; ++i) {
    labels[i] = static_cast<int32_t>(std::max_element(&z[i * kClasses], &z[(i + 1) * kClasses]) - &z[i * kClasses]);
    targets[i] = (labels[i] + 1 + i) % kClasses;
    keys[i] = 10 + i;
  }
  labels[n - 1] = (labels[n - 1] + 1) % kClasses;  // one misclassified sample, not attacked
  for (ApgdLoss loss : {ApgdLoss::kCe, ApgdLoss::kDlr, ApgdLoss::kDlrTargeted}) {
    const std::string name = loss == ApgdLoss::kCe ? "ce" : loss == ApgdLoss::kDlr ? "dlr" : "dlr-targeted";
    ApgdConfig cfg;
    cfg.loss = loss;
    cfg.epsilon = epsilon;
    cfg.steps = steps;
    cfg.restarts = restarts;
    cfg.target_classes = 3;
    cfg.seed = 3;
    std::vector<double> gc(static_cast<size_t>(n) * kPixels), gg(gc.size()), lc(n), lg(n);
    std::vector<float> zc(z.size()), zg(z.size());
    expect_ok(
        apgd_loss_gradient(nc, images.data(), labels.data(), targets.data(), n, cfg, gc.data(), lc.data(), zc.data()),
        "cpu apgd loss");
    expect_ok(
        apgd_loss_gradient(ng, images.data(), labels.data(), targets.data(), n, cfg, gg.data(), lg.data(), zg.data()),
        "cuda apgd loss");
    std::vector<float> fc(gc.begin(), gc.end()), fg(gg.begin(), gg.end()), flc(lc.begin(), lc.end()),
        flg(lg.begin(), lg.end());
    close("apgd " + name + " loss", flg.data(), flc.data(), n, 1e-4, 1e-3);
    close("apgd " + name + " input gradient", fg.data(), fc.data(), fc.size(), 1e-4, 1e-3);
    AttackResults rc, rg;
    expect_ok(run_apgd(nc, images.data(), labels.data(), keys.data(), n, cfg, &rc), "cpu apgd");
    expect_ok(run_apgd(ng, images.data(), labels.data(), keys.data(), n, cfg, &rg), "cuda apgd");
    expect(rc.attacked == rg.attacked && rc.success == rg.success,
           "apgd " + name + ": the same samples attacked and fooled");
    expect(rc.iterations == rg.iterations, "apgd " + name + ": the same steps taken");
    int wins = 0, differ = 0;
    float worst = 0;
    for (int i = 0; i < n; ++i) wins += rc.success[i];
    for (size_t p = 0; p < rc.adversarial.size(); ++p) {
      const float d = std::fabs(rc.adversarial[p] - rg.adversarial[p]);
      differ += d > 0;
      worst = std::max(worst, d);
    }
    std::printf("  apgd %-12s %d of %d attacked fooled; %d of %zu pixels differ (largest %.3g)\n", name.c_str(), wins,
                n - 1, differ, rc.adversarial.size(), worst);
    expect(differ * 100 <= static_cast<int>(rc.adversarial.size()),
           "apgd " + name + ": at most 1% of the pixels differ");
  }
}

// The cuDNN / cuBLAS paths as loaded by dlopen (the fakes of fake_libraries.cpp): they passed
// the start-up check, the plan cache stays bounded, and a library error turns that one
// operation over to our kernels with the result still right.
void test_libraries(Backend* cpu, cuda::CudaBackend* gpu) {
  std::printf("libraries (dlopen)\n");
  const std::string name = gpu->device_name();
  expect(name.find("cuDNN 9.1.0") != std::string::npos && name.find("cuBLAS 13.1.0") != std::string::npos,
         "cuDNN and cuBLAS loaded and passed the start-up check: " + name);
  if (gpu->cudnn_api() == nullptr) return;
  void* lib = dlopen(gpu->cudnn_api()->file.c_str(), RTLD_NOW | RTLD_NOLOAD);
  auto live = lib ? reinterpret_cast<int (*)()>(dlsym(lib, "fake_cudnn_live_descriptors")) : nullptr;
  auto fail_calls = lib ? reinterpret_cast<void (*)(int)>(dlsym(lib, "fake_library_fail_calls")) : nullptr;
  expect(live != nullptr && fail_calls != nullptr, "the fake library's test hooks");
  if (live == nullptr || fail_calls == nullptr) return;
  // 40 batch sizes, as a sweep's tail chunks and an attack's shrinking batches bring.
  const int before = live();
  for (int n = 1; n <= 40; ++n) {
    const Conv3x3Shape s{n, 5, 5, 2, 3};
    Buf x(gpu, sizeof(float) * n * 25 * 2), w(gpu, sizeof(float) * 54), b(gpu, sizeof(float) * 3), y(gpu, sizeof(float) * n * 9 * 3);
    expect_ok(gpu->conv3x3_forward(s, x.as<float>(), w.as<float>(), b.as<float>(), y.as<float>(), false), "conv for the cache");
  }
  expect(live() <= before + 24 * 4, "the cuDNN plan cache is bounded: " + std::to_string(live()) + " descriptors alive");
  // One failing library call: the operation moves to our kernels, the call still succeeds.
  const Conv3x3Shape s{2, 8, 7, 3, 5};
  const size_t xs = 2 * 8 * 7 * 3, ys = 2 * 6 * 5 * 5;
  Pair x(cpu, gpu, random_floats(xs, 71)), w(cpu, gpu, random_floats(135, 72)), bias(cpu, gpu, random_floats(5, 73));
  Pair y(cpu, gpu, sizeof(float) * ys);
  fail_calls(1);
  expect_ok(cpu->conv3x3_forward(s, x.c.as<float>(), w.c.as<float>(), bias.c.as<float>(), y.c.as<float>(), true), "cpu conv");
  expect_ok(gpu->conv3x3_forward(s, x.g.as<float>(), w.g.as<float>(), bias.g.as<float>(), y.g.as<float>(), true),
            "conv after a cuDNN error");
  close("conv forward after a cuDNN error", read<float>(gpu, y.g).data(), read<float>(cpu, y.c).data(), ys);
  expect(gpu->device_name().find("conv3x3_forward on own kernels after: cuDNN error") != std::string::npos,
         "the fallback is reported: " + gpu->device_name());
  fail_calls(0);
}

void test_errors(cuda::CudaBackend* gpu) {
  std::printf("errors\n");
  void* p = nullptr;
  cuda::emulation::fail_next_malloc();
  Status s = gpu->alloc(1024, &p);
  expect(s.code() == StatusCode::kOutOfMemory && p == nullptr, "failed allocation is OutOfMemory: " + s.message());
  s = gpu->alloc(0, &p);
  expect(s.ok() && p == nullptr, "alloc(0) is null and Ok");
  expect_ok(gpu->alloc(64, &p), "alloc after a failed one");
  cuda::emulation::inject_sticky_error();
  s = gpu->zero(p, 64);
  expect(s.code() == StatusCode::kDeviceError, "a device fault is a DeviceError: " + s.message());
  std::printf("  after a fault: %s\n", s.message().c_str());
  s = gpu->relu_backward(static_cast<float*>(p), static_cast<const float*>(p), 16);
  expect(s.code() == StatusCode::kDeviceError, "every later call fails too: " + s.message());
  float host[16];
  s = gpu->download(host, p, sizeof(host));
  expect(s.code() == StatusCode::kDeviceError, "download after a fault fails: " + s.message());
  gpu->release(p);
}

}  // namespace

// The Square attack and Carlini-Wagner L2 (native/core) on the emulated CUDA backend and on
// the CPU for the same weights and images. Both backends' logits differ by float rounding
// (another summation order), and every accept/reject decision of Square and every success
// test of C&W compares logits, so a decision within rounding may go either way and the runs
// then part. Hence: results identical (Square: the same images bit for bit and the same
// queries; C&W: the same outcome and L2 within 1e-3 relative, the image within 1e-3) on all
// samples but at most one, and every result valid on its own (inside the ball and the box).
void test_square_cw(Backend* cpu, Backend* gpu, const ArchSpec& arch, const char* label) {
  std::printf("square and cw-l2 %s\n", label);
  ArchPlan plan;
  expect_ok(plan_arch(arch, &plan), "plan");
  const int kPixels = plan.input_size(), kClasses = plan.classes, n = 6;
  Network nc(cpu, plan), ng(gpu, plan);
  expect_ok(nc.allocate(), "cpu allocate");
  expect_ok(ng.allocate(), "cuda allocate");
  expect_ok(nc.init_glorot(7), "cpu init");
  expect_ok(ng.init_glorot(7), "cuda init");
  std::vector<float> images = random_floats(static_cast<size_t>(n) * kPixels, 61, 0.0f, 1.0f);
  std::vector<float> z(static_cast<size_t>(n) * kClasses);
  expect_ok(nc.predict(images.data(), n, z.data()), "cpu predict");
  std::vector<int32_t> labels(n);
  std::vector<uint32_t> keys(n);
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int j = 1; j < kClasses; ++j)
      if (z[i * kClasses + j] > z[i * kClasses + best]) best = j;
    labels[i] = best;  // the CPU's own prediction: every sample is attacked
    keys[i] = 100 + i;
  }
  SquareConfig sq;
  sq.epsilon = 0.05f;
  sq.queries = 60;
  sq.seed = 3;
  AttackResults sc, sg;
  expect_ok(run_square(nc, images.data(), labels.data(), keys.data(), n, sq, &sc), "cpu square");
  expect_ok(run_square(ng, images.data(), labels.data(), keys.data(), n, sq, &sg), "cuda square");
  int differ = 0;
  for (int i = 0; i < n; ++i) {
    const size_t base = static_cast<size_t>(i) * kPixels;
    const bool same = sc.iterations[i] == sg.iterations[i] && sc.success[i] == sg.success[i] &&
                      std::memcmp(&sc.adversarial[base], &sg.adversarial[base], sizeof(float) * kPixels) == 0;
    differ += same ? 0 : 1;
    expect(sg.attacked[i] == 1 && sg.linf[i] <= sq.epsilon + 6e-8f, "cuda square inside the ball");
  }
  std::printf("  square: %d of %d samples differ\n", differ, n);
  expect(differ <= 1, std::string("square on cuda as on cpu (") + label + ")");

  CwL2Config cw;
  cw.steps = 15;
  cw.search_steps = 2;
  cw.learning_rate = 0.05;
  cw.initial_const = 1.0;
  AttackResults cc, cg;
  CwL2Extras ec, eg;
  expect_ok(run_cw_l2(nc, images.data(), labels.data(), n, cw, &cc, &ec), "cpu cw-l2");
  expect_ok(run_cw_l2(ng, images.data(), labels.data(), n, cw, &cg, &eg), "cuda cw-l2");
  differ = 0;
  for (int i = 0; i < n; ++i) {
    const size_t base = static_cast<size_t>(i) * kPixels;
    bool same = cc.success[i] == cg.success[i] && cc.iterations[i] == cg.iterations[i] &&
                std::fabs(ec.l2[i] - eg.l2[i]) <= 1e-3 * std::max(ec.l2[i], 1e-6);
    for (int p = 0; p < kPixels && same; ++p)
      same = std::fabs(cc.adversarial[base + p] - cg.adversarial[base + p]) <= 1e-3f;
    differ += same ? 0 : 1;
  }
  std::printf("  cw-l2: %d of %d samples differ (cpu successes:", differ, n);
  for (int i = 0; i < n; ++i) std::printf(" %d", cc.success[i]);
  std::printf(")\n");
  expect(differ <= 1, std::string("cw-l2 on cuda as on cpu (") + label + ")");
}

// The attacks of native/core on the emulated device against the CPU backend.
void test_attacks(Backend* cpu, Backend* gpu) {
  // Radii where some runs end unfooled, so whole runs (restarts, checkpoints) are compared too.
  test_apgd(cpu, gpu, small_colour_spec(), "3x12x12, 7 classes", 0.05f, 12, 2);
  test_apgd(cpu, gpu, paper_mnist_spec(), "paper-mnist", 0.01f, 6, 1);
  test_square_cw(cpu, gpu, paper_mnist_spec(), "paper-mnist");
  test_square_cw(cpu, gpu, small_colour_spec(), "3x12x12");
}

int main() {
  std::string why;
  cuda::CudaBackend* gpu = cuda::CudaBackend::create(&why);
  if (gpu == nullptr) {
    std::printf("FAIL: the emulated backend did not start: %s\n", why.c_str());
    return 1;
  }
  std::printf("backend: %s\n", gpu->device_name().c_str());
  cpu::CpuBackend cpu;
  const char* part = std::getenv("TEMPERED_EMULATION_PART");
  // TEMPERED_EMULATION_PART=attacks: only the attacks' checks (a quick run while changing them).
  if (part != nullptr && std::string(part) == "attacks") {
    test_attacks(&cpu, gpu);
    std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  test_ops(&cpu, gpu);
  // Every kernel with shared memory (the tiled products of gemm.cuh) has run by now, on the
  // network's shapes and awkward ones: run.sh compares this digest across thread orders, and
  // with TEMPERED_EMULATION_PART=ops stops here (the other orders need nothing more).
  std::printf("ops digest: %016llx\n", static_cast<unsigned long long>(cuda::emulation::download_digest()));
  if (part != nullptr && std::string(part) == "ops") {
    std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  test_network(&cpu, gpu, paper_mnist_spec(), "paper-mnist");
  test_network(&cpu, gpu, small_colour_spec(), "3x12x12, same padding, a standalone ReLU");
  for (uint32_t seed = 1; seed <= 20; ++seed)
    test_network(&cpu, gpu, random_spec(seed), ("random spec " + std::to_string(seed)).c_str());
  test_attacks(&cpu, gpu);
  // Before the library test, which turns one operation over to our kernels.
  std::printf("digest of every device-to-host copy: %016llx\n", static_cast<unsigned long long>(cuda::emulation::download_digest()));
  const char* kernels = std::getenv("TEMPERED_CUDA_KERNELS");
  if (kernels == nullptr || std::string(kernels) != "own") test_libraries(&cpu, gpu);
  test_errors(gpu);  // last: it breaks the emulated device for good
  std::printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
  return g_failures == 0 ? 0 : 1;
}
