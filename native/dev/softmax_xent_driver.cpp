// softmax_xent_driver: the training loss head (softmax cross-entropy at temperature T, hard
// or soft targets) and its gradient, checked against a double-precision log-sum-exp and timed.
// See driver.h and tempered/backend.h for the formula.
#include "driver.h"

using namespace tempered;

int main(int argc, char** argv) {
  const std::vector<std::string> ops = {"hard", "soft"};
  dev::Options o;
  if (!dev::parse(argc, argv, ops, &o)) return dev::usage(argv[0], ops);
  cpu::CpuBackend b;
  if (!dev::make_backend(o, &b)) return 2;

  std::mt19937_64 rng(o.seed);
  const int n = o.n > 0 ? o.n : 128, classes = 10;
  const float temperature = 20.0f, scale = 20.0f;
  const auto logits = dev::random_floats(static_cast<size_t>(n) * classes, rng, -30.0f, 30.0f);
  std::vector<int32_t> labels(n);
  for (auto& l : labels) l = static_cast<int32_t>(rng() % classes);
  auto soft = dev::random_floats(static_cast<size_t>(n) * classes, rng, 0.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int k = 0; k < classes; ++k) sum += soft[i * classes + k];
    for (int k = 0; k < classes; ++k) soft[i * classes + k] = static_cast<float>(soft[i * classes + k] / sum);
  }
  const bool use_soft = o.op == "soft";
  std::printf("softmax_xent %s: n %d, %d classes, T %g, scale %g\n", o.op.c_str(), n, classes, temperature, scale);

  std::vector<double> want_loss(n), want_grad(static_cast<size_t>(n) * classes);
  for (int i = 0; i < n; ++i) {
    const float* z = &logits[static_cast<size_t>(i) * classes];
    double m = -INFINITY;
    for (int k = 0; k < classes; ++k) m = std::max(m, z[k] / static_cast<double>(temperature));
    double s = 0;
    for (int k = 0; k < classes; ++k) s += std::exp(z[k] / static_cast<double>(temperature) - m);
    const double lse = m + std::log(s);
    double loss = lse;
    for (int k = 0; k < classes; ++k) {
      const double t = use_soft ? soft[i * classes + k] : (k == labels[i] ? 1.0 : 0.0);
      loss -= t * z[k] / temperature;
      const double p = std::exp(z[k] / static_cast<double>(temperature) - lse);
      want_grad[static_cast<size_t>(i) * classes + k] = scale * (p - t) / (temperature * n);
    }
    want_loss[i] = loss;
  }

  dev::DeviceArray<float> z(&b, logits), st(&b, soft), loss(&b, n), grad(&b, want_grad.size());
  dev::DeviceArray<int32_t> lab(&b, labels);
  const SoftmaxXentArgs args{n, classes, temperature, scale, lab.get(), use_soft ? st.get() : nullptr};
  auto run = [&] { dev::require_ok(b.softmax_xent(args, z.get(), loss.get(), grad.get()), "softmax_xent"); };
  run();
  bool ok = dev::check("loss", loss.host(), want_loss, 1e-5, 1e-6);
  ok = dev::check("dlogits", grad.host(), want_grad, 1e-4, 1e-9) && ok;
  dev::time_it("softmax_xent", o.reps, 0, run);
  return ok ? 0 : 1;
}
