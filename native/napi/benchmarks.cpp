#include "benchmarks.h"

#include <memory>
#include <vector>

#include "../core/backends.h"
#include "../core/network.h"
#include "../core/profiling_backend.h"
#include "../cpu/cpu_backend.h"
#include "args.h"
#include "task.h"

namespace tempered {
namespace napi {

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    const double seconds = require_range(arg(info, 0), "seconds", 0.01, 600);
    Backend* b = nullptr;
    get_backend("cpu", &b);
    auto* cpu = static_cast<cpu::CpuBackend*>(b);
    auto gflops = std::make_shared<double>(0);
    auto work = [=]() {
      *gflops = cpu->fma_peak_gflops(seconds);
      return Status::Ok();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("gflops", *gflops);
      o.Set("threads", cpu::CpuBackend::threads());
      o.Set("isa", cpu->kernels().isa);
      return o;
    };
    return Task::Start(env, work, done, nullptr, {});
  });
}

Napi::Value ProfileTraining(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    const std::string backend_name = require_backend_name(arg(info, 0), "backend");
    const int batch = static_cast<int>(require_integer(arg(info, 1), "batchSize", 1, 4096));
    const int steps = static_cast<int>(require_integer(arg(info, 2), "steps", 1, 100000));
    Backend* inner = nullptr;
    Status st = get_backend(backend_name, &inner);
    if (!st.ok()) throw status_error(env, st);
    auto results = std::make_shared<std::vector<OpProfile>>();
    auto work = [=]() -> Status {
      ProfilingBackend prof(inner);
      Network net(&prof);
      TEMPERED_TRY(net.allocate());
      TEMPERED_TRY(net.init_glorot(1));
      // Random images and labels, `batch` of them, resident on the device.
      std::vector<float> images(static_cast<size_t>(batch) * net::kPixels);
      std::vector<int32_t> labels(batch), indices(batch);
      uint32_t s = 12345;
      for (float& x : images) {
        s = s * 1664525u + 1013904223u;
        x = static_cast<float>(s >> 8) / 16777216.0f;
      }
      for (int i = 0; i < batch; ++i) labels[i] = i % net::kClasses, indices[i] = i;
      DeviceDataset data;
      data.backend = &prof;
      data.count = batch;
      TEMPERED_TRY(data.images.allocate(&prof, images.size()));
      TEMPERED_TRY(prof.upload(data.images.get(), images.data(), data.images.bytes()));
      TEMPERED_TRY(data.labels.allocate(&prof, labels.size()));
      TEMPERED_TRY(prof.upload(data.labels.get(), labels.data(), data.labels.bytes()));
      TrainConfig cfg;
      BatchResult r;
      TEMPERED_TRY(net.train_step(data, indices.data(), batch, cfg, 0, &r));  // warm-up, not counted
      prof.reset();
      for (int step = 0; step < steps; ++step) TEMPERED_TRY(net.train_step(data, indices.data(), batch, cfg, step + 1, &r));
      *results = prof.results();
      return Status::Ok();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
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
    return Task::Start(env, work, done, nullptr, {});
  });
}

}  // namespace napi
}  // namespace tempered
