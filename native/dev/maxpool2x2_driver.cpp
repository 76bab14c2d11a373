// maxpool2x2_driver: 2x2 max pooling (NHWC, ties to the first position in raster order)
// forward and backward on the network's first pooling shape (24x24x32 -> 12x12x32), checked
// exactly against a naive loop and timed. See driver.h.
#include "driver.h"

using namespace tempered;

int main(int argc, char** argv) {
  const std::vector<std::string> ops = {"forward", "backward"};
  dev::Options o;
  if (!dev::parse(argc, argv, ops, &o)) return dev::usage(argv[0], ops);
  cpu::CpuBackend b;
  if (!dev::make_backend(o, &b)) return 2;

  std::mt19937_64 rng(o.seed);
  const int n = o.n > 0 ? o.n : 128, h = 24, w = 24, c = 32, oh = h / 2, ow = w / 2;
  auto x = dev::random_floats(static_cast<size_t>(n) * h * w * c, rng);
  // Some exact ties, so the tie rule is exercised.
  for (size_t i = 0; i < x.size(); i += 7) x[i] = 0.5f;
  const auto dy = dev::random_floats(static_cast<size_t>(n) * oh * ow * c, rng);
  std::printf("maxpool2x2 %s: n %d, %dx%dx%d -> %dx%dx%d\n", o.op.c_str(), n, h, w, c, oh, ow, c);

  // Reference: the maximum and the first position holding it, in raster order.
  std::vector<double> want_y(dy.size()), want_dx(x.size(), 0.0);
  auto xi = [&](int img, int y, int xx, int ch) { return x[((static_cast<size_t>(img) * h + y) * w + xx) * c + ch]; };
  for (int img = 0; img < n; ++img)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int ch = 0; ch < c; ++ch) {
          int best = 0;
          for (int k = 1; k < 4; ++k)
            if (xi(img, 2 * oy + k / 2, 2 * ox + k % 2, ch) > xi(img, 2 * oy + best / 2, 2 * ox + best % 2, ch))
              best = k;
          const size_t out = ((static_cast<size_t>(img) * oh + oy) * ow + ox) * c + ch;
          want_y[out] = xi(img, 2 * oy + best / 2, 2 * ox + best % 2, ch);
          want_dx[((static_cast<size_t>(img) * h + 2 * oy + best / 2) * w + 2 * ox + best % 2) * c + ch] = dy[out];
        }

  dev::DeviceArray<float> dx_in(&b, x), ddy(&b, dy), y(&b, dy.size()), dx(&b, x.size());
  dev::DeviceArray<uint8_t> argmax(&b, dy.size());
  auto forward = [&] {
    dev::require_ok(b.maxpool2x2_forward(n, h, w, c, dx_in.get(), y.get(), argmax.get()), "forward");
  };
  auto backward = [&] {
    dev::require_ok(b.maxpool2x2_backward(n, h, w, c, ddy.get(), argmax.get(), dx.get()), "backward");
  };
  forward();
  bool ok;
  if (o.op == "forward") {
    ok = dev::check("y", y.host(), want_y, 0.0, 0.0);
    dev::time_it("forward", o.reps, 0, forward);
  } else {
    backward();
    ok = dev::check("dx", dx.host(), want_dx, 0.0, 0.0);
    dev::time_it("backward", o.reps, 0, backward);
  }
  return ok ? 0 : 1;
}
