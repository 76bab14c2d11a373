// conv3x3_driver: the 3x3 'valid' convolution (NHWC, weights [out][in][3][3]) forward,
// backward data and backward weights on each of the network's four convolution shapes
// (28x28x1 -> 26x26x32 up to 10x10x64 -> 8x8x64), checked against a naive double-precision
// loop and timed. Where the training path uses Winograd F(2x2, 3x3) (winograd_f2x2_3x3.h),
// forward and backward data are also run that way (Conv3x3Shape::fast), checked against the
// same reference with the allowance kWinogradFactor times wider, and timed. See driver.h.
#include "driver.h"
#include "winograd_f2x2_3x3.h"

using namespace tempered;

namespace {

// The Winograd path gets the direct kernel's allowance: its transforms add roundings (an
// input transform entry sums 4 inputs, an output 9 products) but each product sums C terms
// instead of 9 C, and measured it comes out 2-3x more accurate (docs/performance.md).
constexpr double kWinogradFactor = 1.0;

struct Problem {
  Conv3x3Shape s;
  std::vector<float> x, w, b, dy;
};

double at_x(const Problem& p, int img, int y, int x, int c) {
  return p.x[((static_cast<size_t>(img) * p.s.in_h + y) * p.s.in_w + x) * p.s.in_c + c];
}
double at_w(const Problem& p, int o, int i, int ky, int kx) {
  return p.w[((static_cast<size_t>(o) * p.s.in_c + i) * 3 + ky) * 3 + kx];
}
double at_dy(const Problem& p, int img, int y, int x, int o) {
  return p.dy[((static_cast<size_t>(img) * p.s.out_h() + y) * p.s.out_w() + x) * p.s.out_c + o];
}

std::vector<double> reference_forward(const Problem& p) {
  const auto& s = p.s;
  std::vector<double> y(static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c);
  size_t k = 0;
  for (int img = 0; img < s.n; ++img)
    for (int oy = 0; oy < s.out_h(); ++oy)
      for (int ox = 0; ox < s.out_w(); ++ox)
        for (int o = 0; o < s.out_c; ++o) {
          double acc = p.b[o];
          for (int i = 0; i < s.in_c; ++i)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx) acc += at_w(p, o, i, ky, kx) * at_x(p, img, oy + ky, ox + kx, i);
          y[k++] = acc;
        }
  return y;
}

std::vector<double> reference_backward_data(const Problem& p) {
  const auto& s = p.s;
  std::vector<double> dx(static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c, 0.0);
  for (int img = 0; img < s.n; ++img)
    for (int oy = 0; oy < s.out_h(); ++oy)
      for (int ox = 0; ox < s.out_w(); ++ox)
        for (int o = 0; o < s.out_c; ++o) {
          const double g = at_dy(p, img, oy, ox, o);
          for (int i = 0; i < s.in_c; ++i)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx)
                dx[((static_cast<size_t>(img) * s.in_h + oy + ky) * s.in_w + ox + kx) * s.in_c + i] +=
                    g * at_w(p, o, i, ky, kx);
        }
  return dx;
}

std::vector<double> reference_backward_weights(const Problem& p, std::vector<double>* db) {
  const auto& s = p.s;
  std::vector<double> dw(static_cast<size_t>(s.out_c) * s.in_c * 9, 0.0);
  db->assign(s.out_c, 0.0);
  for (int img = 0; img < s.n; ++img)
    for (int oy = 0; oy < s.out_h(); ++oy)
      for (int ox = 0; ox < s.out_w(); ++ox)
        for (int o = 0; o < s.out_c; ++o) {
          const double g = at_dy(p, img, oy, ox, o);
          (*db)[o] += g;
          for (int i = 0; i < s.in_c; ++i)
            for (int ky = 0; ky < 3; ++ky)
              for (int kx = 0; kx < 3; ++kx)
                dw[((static_cast<size_t>(o) * s.in_c + i) * 3 + ky) * 3 + kx] += g * at_x(p, img, oy + ky, ox + kx, i);
        }
  return dw;
}

// One operation on one layer's shape: checked, then timed. Returns whether the check passed.
bool run_layer(const dev::Options& o, cpu::CpuBackend& b, const Conv3x3Shape& shape) {
  std::mt19937_64 rng(o.seed);
  Problem p;
  p.s = shape;
  const auto& s = p.s;
  p.x = dev::random_floats(static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c, rng, 0.0f, 1.0f);
  p.w = dev::random_floats(static_cast<size_t>(s.out_c) * s.in_c * 9, rng, -0.1f, 0.1f);
  p.b = dev::random_floats(s.out_c, rng, -0.1f, 0.1f);
  p.dy = dev::random_floats(static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c, rng);
  const double macs = static_cast<double>(s.n) * s.out_h() * s.out_w() * s.out_c * s.in_c * 9;
  std::printf("conv3x3 %s: n %d, %dx%dx%d -> %dx%dx%d\n", o.op.c_str(), s.n, s.in_h, s.in_w, s.in_c, s.out_h(),
              s.out_w(), s.out_c);

  dev::DeviceArray<float> x(&b, p.x), w(&b, p.w), bias(&b, p.b), dy(&b, p.dy);
  bool ok = true;
  // Float32 sums of K terms: allow K float32 roundings of the terms' size.
  if (o.op == "forward") {
    dev::DeviceArray<float> y(&b, static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c);
    auto run = [&] { dev::require_ok(b.conv3x3_forward(s, x.get(), w.get(), bias.get(), y.get(), false), "forward"); };
    run();
    const auto want = reference_forward(p);
    ok = dev::check("y", y.host(), want, 1e-5, s.in_c * 9 * 6e-8 * 4);
    dev::time_it("forward", o.reps, 2 * macs, run);
    Conv3x3Shape fast = s;
    fast.fast = true;
    if (cpu::winograd_forward_chosen(fast)) {
      auto run_fast = [&] {
        dev::require_ok(b.conv3x3_forward(fast, x.get(), w.get(), bias.get(), y.get(), false), "forward (winograd)");
      };
      run_fast();
      ok =
          dev::check("y (winograd)", y.host(), want, 1e-5 * kWinogradFactor, s.in_c * 9 * 6e-8 * 4 * kWinogradFactor) &&
          ok;
      dev::time_it("forward winograd", o.reps, 2 * macs, run_fast);
    }
  } else if (o.op == "backward_data") {
    dev::DeviceArray<float> dx(&b, p.x.size());
    auto run = [&] { dev::require_ok(b.conv3x3_backward_data(s, dy.get(), w.get(), dx.get()), "backward_data"); };
    run();
    const auto want = reference_backward_data(p);
    ok = dev::check("dx", dx.host(), want, 1e-5, s.out_c * 9 * 6e-8 * 4);
    dev::time_it("backward_data", o.reps, 2 * macs, run);
    Conv3x3Shape fast = s;
    fast.fast = true;
    if (cpu::winograd_backward_data_chosen(fast)) {
      auto run_fast = [&] {
        dev::require_ok(b.conv3x3_backward_data(fast, dy.get(), w.get(), dx.get()), "backward_data (winograd)");
      };
      run_fast();
      ok = dev::check("dx (winograd)", dx.host(), want, 1e-5 * kWinogradFactor,
                      s.out_c * 9 * 6e-8 * 4 * kWinogradFactor) &&
           ok;
      dev::time_it("backward_data winograd", o.reps, 2 * macs, run_fast);
    }
  } else {
    dev::DeviceArray<float> dw(&b, p.w.size()), db(&b, p.b.size());
    auto run = [&] {
      dev::require_ok(b.conv3x3_backward_weights(s, x.get(), dy.get(), dw.get(), db.get()), "backward_weights");
    };
    run();
    std::vector<double> want_db;
    const auto want_dw = reference_backward_weights(p, &want_db);
    const double terms = static_cast<double>(s.n) * s.out_h() * s.out_w();
    ok = dev::check("dw", dw.host(), want_dw, 1e-5, terms * 6e-8 * 4);
    ok = dev::check("db", db.host(), want_db, 1e-5, terms * 6e-8 * 4) && ok;
    dev::time_it("backward_weights", o.reps, 2 * macs, run);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> ops = {"forward", "backward_data", "backward_weights"};
  dev::Options o;
  if (!dev::parse(argc, argv, ops, &o)) return dev::usage(argv[0], ops);
  cpu::CpuBackend b;
  if (!dev::make_backend(o, &b)) return 2;
  const int n = o.n > 0 ? o.n : 32;
  // The network's convolutions: {n, in_h, in_w, in_c, out_c}. The small ones have the most
  // border (what backward data must get right at the edges).
  // Then cw-cifar's (32x32x3 -> 30x30x64 ...) and an odd-sized one (Winograd's edge tiles).
  const Conv3x3Shape layers[] = {{n, 28, 28, 1, 32},   {n, 26, 26, 32, 32},   {n, 12, 12, 32, 64},
                                 {n, 10, 10, 64, 64},  {n, 32, 32, 3, 64},    {n, 30, 30, 64, 64},
                                 {n, 14, 14, 64, 128}, {n, 12, 12, 128, 128}, {n, 13, 11, 40, 48}};
  bool ok = true;
  for (const Conv3x3Shape& s : layers) ok = run_layer(o, b, s) && ok;
  return ok ? 0 : 1;
}
