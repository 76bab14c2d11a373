// dense_driver: the fully connected layer (weights [out][in]) forward, backward data and
// backward weights on the network's first dense layer (1024 -> 200), checked against a naive
// double-precision loop and timed. See driver.h.
#include "driver.h"

using namespace tempered;

int main(int argc, char** argv) {
  const std::vector<std::string> ops = {"forward", "backward_data", "backward_weights"};
  dev::Options o;
  if (!dev::parse(argc, argv, ops, &o)) return dev::usage(argv[0], ops);
  cpu::CpuBackend b;
  if (!dev::make_backend(o, &b)) return 2;

  std::mt19937_64 rng(o.seed);
  const DenseShape s{o.n > 0 ? o.n : 128, 1024, 200};
  const auto x = dev::random_floats(static_cast<size_t>(s.n) * s.in, rng, 0.0f, 1.0f);
  const auto w = dev::random_floats(static_cast<size_t>(s.out) * s.in, rng, -0.05f, 0.05f);
  const auto bias = dev::random_floats(s.out, rng, -0.1f, 0.1f);
  const auto dy = dev::random_floats(static_cast<size_t>(s.n) * s.out, rng);
  const double macs = static_cast<double>(s.n) * s.in * s.out;
  std::printf("dense %s: n %d, %d -> %d\n", o.op.c_str(), s.n, s.in, s.out);
  dev::DeviceArray<float> dx_(&b, x), dw_(&b, w), db_(&b, bias), ddy(&b, dy);

  bool ok = true;
  if (o.op == "forward") {
    std::vector<double> want(static_cast<size_t>(s.n) * s.out);
    for (int n = 0; n < s.n; ++n)
      for (int j = 0; j < s.out; ++j) {
        double acc = bias[j];
        for (int i = 0; i < s.in; ++i)
          acc += static_cast<double>(w[static_cast<size_t>(j) * s.in + i]) * x[static_cast<size_t>(n) * s.in + i];
        want[static_cast<size_t>(n) * s.out + j] = acc;
      }
    dev::DeviceArray<float> y(&b, want.size());
    auto run = [&] { dev::require_ok(b.dense_forward(s, dx_.get(), dw_.get(), db_.get(), y.get(), false), "forward"); };
    run();
    ok = dev::check("y", y.host(), want, 1e-5, s.in * 6e-8 * 4);
    dev::time_it("forward", o.reps, 2 * macs, run);
  } else if (o.op == "backward_data") {
    std::vector<double> want(static_cast<size_t>(s.n) * s.in, 0.0);
    for (int n = 0; n < s.n; ++n)
      for (int j = 0; j < s.out; ++j)
        for (int i = 0; i < s.in; ++i)
          want[static_cast<size_t>(n) * s.in + i] +=
              static_cast<double>(dy[static_cast<size_t>(n) * s.out + j]) * w[static_cast<size_t>(j) * s.in + i];
    dev::DeviceArray<float> dx(&b, want.size());
    auto run = [&] { dev::require_ok(b.dense_backward_data(s, ddy.get(), dw_.get(), dx.get()), "backward_data"); };
    run();
    ok = dev::check("dx", dx.host(), want, 1e-5, s.out * 6e-8 * 4);
    dev::time_it("backward_data", o.reps, 2 * macs, run);
  } else {
    std::vector<double> want_w(static_cast<size_t>(s.out) * s.in, 0.0), want_b(s.out, 0.0);
    for (int n = 0; n < s.n; ++n)
      for (int j = 0; j < s.out; ++j) {
        const double g = dy[static_cast<size_t>(n) * s.out + j];
        want_b[j] += g;
        for (int i = 0; i < s.in; ++i)
          want_w[static_cast<size_t>(j) * s.in + i] += g * x[static_cast<size_t>(n) * s.in + i];
      }
    dev::DeviceArray<float> gw(&b, want_w.size()), gb(&b, want_b.size());
    auto run = [&] {
      dev::require_ok(b.dense_backward_weights(s, dx_.get(), ddy.get(), gw.get(), gb.get()), "backward_weights");
    };
    run();
    ok = dev::check("dw", gw.host(), want_w, 1e-5, s.n * 6e-8 * 4);
    ok = dev::check("db", gb.host(), want_b, 1e-5, s.n * 6e-8 * 4) && ok;
    dev::time_it("backward_weights", o.reps, 2 * macs, run);
  }
  return ok ? 0 : 1;
}
