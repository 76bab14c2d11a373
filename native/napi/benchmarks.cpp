#include "benchmarks.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/backends.h"
#include "../core/network.h"
#include "../core/profiling_backend.h"
#include "../cpu/cpu_backend.h"
#include "arch_args.h"
#include "args.h"
#include "task.h"

namespace tempered {
namespace napi {

namespace {

// The core clock, from a chain of dependent register adds (one cycle each on every x86-64
// core) timed by the steady clock. A register operand, not an immediate: some cores fold
// chains of immediate adds at rename. The best of many short bursts, so a burst in which
// the thread was preempted (the machine may be shared) does not count. 0 where the empty
// asm barrier that keeps the chain is not available.
double dependent_add_ghz() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
  constexpr int64_t kAdds = 1 << 22;
  volatile uint64_t one = 1;
  const uint64_t step = one;
  double best = 0;
  for (int burst = 0; burst < 40; ++burst) {
    uint64_t x = burst;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < kAdds; i += 8) {
      // Eight adds per iteration: the loop counter runs beside the chain, off its path.
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
      x += step;
      asm volatile("" : "+r"(x));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    volatile uint64_t keep = x;
    (void)keep;
    if (s > 0) best = std::max(best, kAdds / s / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

// `count` reproducible pseudo-random pixels in [0, 1) (a linear congruential generator).
std::vector<float> random_pixels(size_t count) {
  std::vector<float> images(count);
  uint32_t s = 12345;
  for (float& x : images) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / 16777216.0f;
  }
  return images;
}

// What both profiles take: backend, batch size, repetitions, architecture.
struct ProfileArgs {
  Backend* backend;
  int batch, repetitions;
  ArchPlan plan;
};
ProfileArgs profile_args(const Napi::CallbackInfo& info, const char* repetitions) {
  const std::string backend_name = require_backend_name(arg(info, 0), "backend");
  ProfileArgs a{nullptr, static_cast<int>(require_integer(arg(info, 1), "batchSize", 1, 4096)),
                static_cast<int>(require_integer(arg(info, 2), repetitions, 1, 100000)), require_arch(arg(info, 3))};
  Status st = get_backend(backend_name, &a.backend);
  if (!st.ok()) throw status_error(info.Env(), st);
  return a;
}

// The JS array of a profile's rows, for a Task's completion.
auto profile_array(std::shared_ptr<std::vector<OpProfile>> results) {
  return [results](Napi::Env e) -> Napi::Value {
    Napi::Array out = Napi::Array::New(e, results->size());
    for (size_t i = 0; i < results->size(); ++i) {
      const OpProfile& p = (*results)[i];
      Napi::Object o = Napi::Object::New(e);
      o.Set("op", p.op);
      o.Set("shape", p.shape);
      o.Set("calls", static_cast<double>(p.calls));
      o.Set("seconds", p.seconds);
      o.Set("flops", p.flops);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  };
}

}  // namespace

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    const double seconds = require_range(arg(info, 0), "seconds", 0.01, 600);
    Backend* b = nullptr;
    get_backend("cpu", &b);
    auto* cpu = static_cast<cpu::CpuBackend*>(b);
    auto gflops = std::make_shared<double>(0);
    auto clock_ghz = std::make_shared<double>(0);
    auto work = [=]() {
      *gflops = cpu->fma_peak_gflops(seconds);
      // The clock right after, on every pool thread at once (the all-core clock, as in the
      // peak loop); the mean of the threads' rates.
      cpu::ThreadPool& pool = cpu::CpuBackend::pool();
      std::vector<double> ghz(pool.threads(), 0.0);
      pool.parallel_for(pool.threads(), [&](int64_t t) { ghz[t] = dependent_add_ghz(); });
      double sum = 0;
      for (double g : ghz) sum += g;
      *clock_ghz = sum / ghz.size();
      return Status::Ok();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("gflops", *gflops);
      o.Set("clockGhz", *clock_ghz);
      o.Set("threads", cpu::CpuBackend::threads());
      o.Set("isa", cpu->kernels().isa);
      return o;
    };
    return Task::Start(env, work, done, nullptr, {});
  });
}

namespace {

// A profile's task: a network of the given architecture with Glorot weights behind a
// ProfilingBackend; `run(prof, net)` does the timed work (after its own warm-up and reset).
template <typename Run>
Napi::Value profile_task(Napi::Env env, const ProfileArgs& p, Run run) {
  auto results = std::make_shared<std::vector<OpProfile>>();
  auto work = [=]() -> Status {
    ProfilingBackend prof(p.backend);
    Network net(&prof, p.plan);
    TEMPERED_TRY(net.allocate());
    TEMPERED_TRY(net.init_glorot(1));
    TEMPERED_TRY(run(prof, net));
    *results = prof.results();
    return Status::Ok();
  };
  return Task::Start(env, work, profile_array(results), nullptr, {});
}

}  // namespace

Napi::Value ProfileTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    const ProfileArgs p = profile_args(info, "steps");
    const int batch = p.batch, steps = p.repetitions;
    return profile_task(env, p, [=](ProfilingBackend& prof, Network& net) -> Status {
      // Random images and labels, `batch` of them, resident on the device.
      const std::vector<float> images = random_pixels(static_cast<size_t>(batch) * net.input_size());
      std::vector<int32_t> labels(batch), indices(batch);
      for (int i = 0; i < batch; ++i) labels[i] = i % net.classes(), indices[i] = i;
      DeviceDataset data;
      data.backend = &prof;
      data.count = batch;
      data.input_size = net.input_size();
      data.classes = net.classes();
      TEMPERED_TRY(data.images.allocate(&prof, images.size()));
      TEMPERED_TRY(prof.upload(data.images.get(), images.data(), data.images.bytes()));
      TEMPERED_TRY(data.labels.allocate(&prof, labels.size()));
      TEMPERED_TRY(prof.upload(data.labels.get(), labels.data(), data.labels.bytes()));
      TrainConfig cfg;
      BatchResult r;
      TEMPERED_TRY(net.train_step(data, indices.data(), batch, cfg, 0, &r));  // warm-up, not counted
      prof.reset();
      for (int step = 0; step < steps; ++step)
        TEMPERED_TRY(net.train_step(data, indices.data(), batch, cfg, step + 1, &r));
      return Status::Ok();
    });
  });
}

Napi::Value ProfileForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    const ProfileArgs p = profile_args(info, "repetitions");
    const int batch = p.batch, reps = p.repetitions;
    return profile_task(env, p, [=](ProfilingBackend& prof, Network& net) -> Status {
      const std::vector<float> images = random_pixels(static_cast<size_t>(batch) * net.input_size());
      std::vector<float> logits(static_cast<size_t>(batch) * net.classes());
      TEMPERED_TRY(net.predict(images.data(), batch, logits.data()));  // warm-up, not counted
      prof.reset();
      for (int r = 0; r < reps; ++r) TEMPERED_TRY(net.predict(images.data(), batch, logits.data()));
      return Status::Ok();
    });
  });
}

}  // namespace napi
}  // namespace tempered
