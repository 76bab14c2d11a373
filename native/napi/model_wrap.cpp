#include "model_wrap.h"

#include <cstring>

#include "../core/attack.h"
#include "../core/backends.h"
#include "addon_data.h"
#include "arch_args.h"
#include "args.h"
#include "dataset_wrap.h"
#include "in_use.h"
#include "limits.h"
#include "model_args.h"
#include "task.h"

namespace tempered {
namespace napi {

namespace {

struct PendingModel {
  std::unique_ptr<Network> net;
  std::string backend;
};

// Reads the training configuration object, each property once; every field optional with
// the paper's default (convolution: `fast_conv` unless the object says).
TrainConfig parse_train_config(Napi::Value v, bool fast_conv) {
  TrainConfig c;
  c.fast_conv = fast_conv;
  if (v.IsUndefined()) return c;
  Napi::Object o = require_object(v, "config");
  Napi::Value x;
  if (!(x = o.Get("learningRate")).IsUndefined())
    c.learning_rate = static_cast<float>(require_limit(x, "config.learningRate", kLearningRateLimit));
  if (!(x = o.Get("momentum")).IsUndefined())
    c.momentum = static_cast<float>(require_limit(x, "config.momentum", kMomentumLimit));
  if (!(x = o.Get("temperature")).IsUndefined())
    c.temperature = static_cast<float>(require_limit(x, "config.temperature", kTemperatureLimit));
  if (!(x = o.Get("lossScale")).IsUndefined())
    c.loss_scale = static_cast<float>(require_limit(x, "config.lossScale", kLossScaleLimit));
  if (!(x = o.Get("l2")).IsUndefined()) c.l2_output = static_cast<float>(require_limit(x, "config.l2", kL2Limit));
  if (!(x = o.Get("dropoutRate")).IsUndefined())
    c.dropout_rate = static_cast<float>(require_limit(x, "config.dropoutRate", kDropoutRateLimit));
  if (!(x = o.Get("dropoutSeed")).IsUndefined())
    c.dropout_seed = static_cast<uint32_t>(require_integer(x, "config.dropoutSeed", 0, 0xffffffffLL));
  if (!(x = o.Get("softTargets")).IsUndefined()) c.use_soft_targets = require_bool(x, "config.softTargets");
  if (!(x = o.Get("convolution")).IsUndefined()) {
    const std::string conv = require_string(x, "config.convolution");
    if (conv != "fast" && conv != "direct")
      throw range_error(x.Env(), "config.convolution must be 'fast' or 'direct' (got '" + conv + "')");
    c.fast_conv = conv == "fast";
  }
  return c;
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelWrap::Backend>("backend"),
                         InstanceMethod<&ModelWrap::Plan>("plan"),
                         InstanceMethod<&ModelWrap::ParameterCount>("parameterCount"),
                         InstanceMethod<&ModelWrap::GetParameters>("getParameters"),
                         InstanceMethod<&ModelWrap::SetParameters>("setParameters"),
                         InstanceMethod<&ModelWrap::GetVelocity>("getVelocity"),
                         InstanceMethod<&ModelWrap::SetVelocity>("setVelocity"),
                         InstanceMethod<&ModelWrap::TrainSteps>("trainSteps"),
                         InstanceMethod<&ModelWrap::Evaluate>("evaluate"),
                         InstanceMethod<&ModelWrap::Predict>("predict"),
                         InstanceMethod<&ModelWrap::Trace>("trace"),
                         InstanceMethod<&ModelWrap::InputGradient>("inputGradient"),
                         InstanceMethod<&ModelWrap::Sweep>("sweep"),
                         InstanceMethod<&ModelWrap::AttackLosses>("attackLosses"),
                         InstanceMethod<&ModelWrap::Attack>("attack"),
                         InstanceMethod<&ModelWrap::Jsma>("jsma"),
                         InstanceMethod<&ModelWrap::Pgd>("pgd"),
                         InstanceMethod<&ModelWrap::Apgd>("apgd"),
                         InstanceMethod<&ModelWrap::ApgdLossGradient>("apgdLoss"),
                         InstanceMethod<&ModelWrap::Square>("square"),
                         InstanceMethod<&ModelWrap::CwL2>("cwL2"),
                         InstanceMethod<&ModelWrap::SetThreads>("setThreads"),
                         InstanceMethod<&ModelWrap::GetThreads>("getThreads"),
                         InstanceMethod<&ModelWrap::Dispose>("dispose"),
                         InstanceMethod<&ModelWrap::IsDisposed>("isDisposed"),
                     });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw type_error(info.Env(), "Model cannot be constructed directly: use createModel()");
  auto* pending = info[0].As<Napi::External<PendingModel>>().Data();
  net_ = std::move(pending->net);
  backend_name_ = pending->backend;
}

Napi::Value ModelWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string backend_name = require_backend_name(arg(info, 0), "backend");
    uint32_t seed = static_cast<uint32_t>(require_integer(arg(info, 1), "seed", 0, 0xffffffffLL));
    ArchPlan plan = require_arch(arg(info, 2));
    tempered::Backend* backend = nullptr;
    Status st = get_backend(backend_name, &backend);
    if (!st.ok()) throw status_error(env, st);
    PendingModel pending;
    pending.backend = backend_name;
    pending.net = std::make_unique<Network>(backend, std::move(plan));
    st = pending.net->allocate();
    if (st.ok()) st = pending.net->init_glorot(seed);
    if (!st.ok()) throw status_error(env, st);
    return addon_data(env).model_constructor.New({Napi::External<PendingModel>::New(env, &pending)});
  });
}

void ModelWrap::check_idle(Napi::Env env) const {
  if (!net_) throw plain_error(env, "the model has been disposed", kDisposed);
  if (in_flight_ > 0) throw plain_error(env, "the model is busy with another operation; await it first", kBusy);
}

void ModelWrap::claim(Napi::Env env, InUse* use) {
  check_idle(env);
  use->hold(&in_flight_);
}

DatasetWrap* ModelWrap::claim_dataset(Napi::Value v, InUse* use) {
  DatasetWrap* ds = DatasetWrap::FromArg(v, "dataset");
  ds->hold(use);
  if (ds->backend_name() != backend_name_)
    throw plain_error(
        v.Env(), "the dataset lives on backend '" + ds->backend_name() + "' but the model on '" + backend_name_ + "'",
        kBackendMismatch);
  const DeviceDataset* d = ds->data();
  if (d->input_size != net_->input_size() || d->classes != net_->classes())
    throw range_error(v.Env(),
                      "the dataset holds images of " + std::to_string(d->input_size) + " values and " +
                          std::to_string(d->classes) + " classes, but the model takes " +
                          std::to_string(net_->input_size()) + " values and " + std::to_string(net_->classes()) +
                          " classes",
                      kInvalidLength);
  return ds;
}

Napi::Promise ModelWrap::start(Napi::Env env, InUse* use, Task::Work work, Task::Done done,
                               std::vector<Napi::Object> pins) {
  pins.push_back(Value());
  // The work runs on the model's own CPU threads when it has them.
  Task::Work on_pool = [pool = pool_, work = std::move(work)]() {
    cpu::PoolScope scope(pool.get());
    return work();
  };
  return Task::Start(env, std::move(on_pool), std::move(done), use->hand_over(), std::move(pins));
}

// setThreads(n): the model's CPU operations run on n threads of its own (n >= 1), or on the
// process-wide pool again (n = 0). Refused while an operation runs (the pool is in use).
Napi::Value ModelWrap::SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int threads = static_cast<int>(require_integer(arg(info, 0), "threads", 0, 1024));
    check_idle(env);
    if (threads == 0)
      pool_.reset();
    else if (!pool_ || pool_->threads() != threads)
      pool_ = std::make_shared<cpu::ThreadPool>(threads);
    return env.Undefined();
  });
}

// getThreads() -> the model's own thread count, 0 when it uses the process-wide pool.
Napi::Value ModelWrap::GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), pool_ ? pool_->threads() : 0);
}

Napi::Value ModelWrap::Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend_name_); }

// The plan never changes, so these answer while an operation runs too (not once disposed).
Napi::Value ModelWrap::ParameterCount(const Napi::CallbackInfo& info) {
  if (!net_) throw plain_error(info.Env(), "the model has been disposed", kDisposed);
  return Napi::Number::New(info.Env(), static_cast<double>(net_->plan().total_params));
}

Napi::Value ModelWrap::Plan(const Napi::CallbackInfo& info) {
  if (!net_) throw plain_error(info.Env(), "the model has been disposed", kDisposed);
  return plan_to_js(info.Env(), net_->plan());
}

// The flat parameter and velocity arrays share their checks and copies.
Napi::Value ModelWrap::GetFlat(Napi::Env env, Status (Network::*get)(float*)) {
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    Napi::Float32Array out = Napi::Float32Array::New(env, net_->plan().total_params);
    Status st = (net_.get()->*get)(out.Data());
    if (!st.ok()) throw status_error(env, st);
    return out;
  });
}

Napi::Value ModelWrap::SetFlat(const Napi::CallbackInfo& info, const char* name, Status (Network::*set)(const float*)) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const std::vector<float> p = copy_f32(arg(info, 0), name);
    check_idle(env);
    require_length(env, p.size(), net_->plan().total_params, name);
    require_all_finite(env, p, name);
    Status st = (net_.get()->*set)(p.data());
    if (!st.ok()) throw status_error(env, st);
    return env.Undefined();
  });
}

Napi::Value ModelWrap::GetParameters(const Napi::CallbackInfo& info) {
  return GetFlat(info.Env(), &Network::get_parameters);
}
Napi::Value ModelWrap::SetParameters(const Napi::CallbackInfo& info) {
  return SetFlat(info, "parameters", &Network::set_parameters);
}
Napi::Value ModelWrap::GetVelocity(const Napi::CallbackInfo& info) {
  return GetFlat(info.Env(), &Network::get_velocity);
}
Napi::Value ModelWrap::SetVelocity(const Napi::CallbackInfo& info) {
  return SetFlat(info, "velocity", &Network::set_velocity);
}

// Every entry point below runs in the same order: claim the model (and the data set), read
// every argument into plain C++ values (typed arrays copied at once), check the copies,
// then start the work. User code that runs while the arguments are read (getters) finds
// the objects in use, and nothing it does can change what was already copied.

// trainSteps(dataset, indices, batchSize, config, firstStep)
//   -> Promise<{ lossSum: Float64Array, correct: Int32Array, samples: Int32Array }>, one entry per batch.
Napi::Value ModelWrap::TrainSteps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    DatasetWrap* ds = claim_dataset(arg(info, 0), &use);
    auto indices = std::make_shared<std::vector<int32_t>>(copy_i32(arg(info, 1), "indices"));
    const int batch = static_cast<int>(require_integer(arg(info, 2), "batchSize", 1, 1 << 16));
    const TrainConfig cfg = parse_train_config(arg(info, 3), true);
    const uint32_t first_step = static_cast<uint32_t>(require_integer(arg(info, 4), "firstStep", 0, 0xffffffffLL));

    if (indices->empty()) throw range_error(env, "indices must not be empty", kInvalidLength);
    if (indices->size() > 0x7fffffff) throw range_error(env, "indices: too many", kInvalidLength);
    const int count = ds->data()->count;
    for (size_t i = 0; i < indices->size(); ++i)
      if ((*indices)[i] < 0 || (*indices)[i] >= count)
        throw range_error(env, "indices[" + std::to_string(i) + "] = " + std::to_string((*indices)[i]) +
                                   " is outside the dataset (0.." + std::to_string(count - 1) + ")");
    if (cfg.use_soft_targets && !ds->data()->has_soft())
      throw range_error(env, "config.softTargets is true but the dataset has no soft targets");

    const int batches = static_cast<int>((indices->size() + batch - 1) / batch);
    auto loss = std::make_shared<std::vector<double>>(batches);
    auto correct = std::make_shared<std::vector<int32_t>>(batches);
    auto samples = std::make_shared<std::vector<int32_t>>(batches);
    Network* net = net_.get();
    DeviceDataset* data = ds->data();
    auto work = [=]() -> Status {
      for (int b = 0; b < batches; ++b) {
        const int begin = b * batch;
        const int n = std::min<int>(batch, static_cast<int>(indices->size()) - begin);
        BatchResult r;
        TEMPERED_TRY(net->train_step(*data, indices->data() + begin, n, cfg, first_step + b, &r));
        (*loss)[b] = r.loss_sum;
        (*correct)[b] = r.correct;
        (*samples)[b] = n;
      }
      return Status::Ok();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      out.Set("lossSum", to_js(e, *loss));
      out.Set("correct", to_js(e, *correct));
      out.Set("samples", to_js(e, *samples));
      return out;
    };
    return start(env, &use, work, done, {ds->Value()});
  });
}

// evaluate(dataset, begin, end, temperature, wantLogits)
//   -> Promise<{ lossSum: number, correct: number, count: number, logits?: Float32Array }>
Napi::Value ModelWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    DatasetWrap* ds = claim_dataset(arg(info, 0), &use);
    const int count = ds->data()->count;
    const int begin = static_cast<int>(require_integer(arg(info, 1), "begin", 0, count));
    const int end = static_cast<int>(require_integer(arg(info, 2), "end", begin, count));
    const float temperature = static_cast<float>(require_limit(arg(info, 3), "temperature", kTemperatureLimit));
    const bool want_logits = require_bool(arg(info, 4), "wantLogits");
    auto result = std::make_shared<BatchResult>();
    auto logits =
        std::make_shared<std::vector<float>>(want_logits ? static_cast<size_t>(end - begin) * net_->classes() : 0);
    Network* net = net_.get();
    DeviceDataset* data = ds->data();
    auto work = [=]() -> Status {
      return net->evaluate(*data, begin, end, temperature, result.get(), want_logits ? logits->data() : nullptr);
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      out.Set("lossSum", result->loss_sum);
      out.Set("correct", result->correct);
      out.Set("count", end - begin);
      if (want_logits) out.Set("logits", to_js(e, *logits));
      return out;
    };
    return start(env, &use, work, done, {ds->Value()});
  });
}

// predict(images: Float32Array [n * 784]) -> Promise<Float32Array [n * 10]> (logits)
Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    auto images = std::make_shared<std::vector<float>>(copy_f32(arg(info, 0), "images"));
    const size_t n = require_multiple(env, images->size(), net_->input_size(), "images");
    if (n > 0x7fffffff) throw range_error(env, "images: too many rows", kInvalidLength);
    require_all_finite(env, *images, "images");
    auto logits = std::make_shared<std::vector<float>>(n * net_->classes());
    Network* net = net_.get();
    auto work = [=]() -> Status { return net->predict(images->data(), static_cast<int>(n), logits->data()); };
    auto done = [=](Napi::Env e) -> Napi::Value { return to_js(e, *logits); };
    return start(env, &use, work, done);
  });
}

// trace(images, labels, softTargets | null, config, step) -> Promise<Record<string, Float32Array>>
Napi::Value ModelWrap::Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto soft = std::make_shared<std::vector<float>>();
    Napi::Value soft_v = arg(info, 2);
    const bool has_soft = !soft_v.IsNull() && !soft_v.IsUndefined();
    if (has_soft) *soft = copy_f32(soft_v, "softTargets");
    const TrainConfig cfg = parse_train_config(arg(info, 3), false);  // a trace is the reference: direct by default
    const uint32_t step = static_cast<uint32_t>(require_integer(arg(info, 4), "step", 0, 0xffffffffLL));

    check_images_labels(env, in, net_->input_size(), net_->classes());
    const int n = in.count();
    if (has_soft) {
      require_length(env, soft->size(), static_cast<size_t>(n) * net_->classes(), "softTargets");
      require_all_finite(env, *soft, "softTargets");
    }
    auto trace = std::make_shared<tempered::Trace>();
    Network* net = net_.get();
    auto work = [=]() -> Status {
      return net->trace(in.images->data(), in.labels->data(), soft->empty() ? nullptr : soft->data(), n, cfg, step,
                        trace.get());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      for (auto& [name, values] : trace->tensors) out.Set(name, to_js(e, values));
      return out;
    };
    return start(env, &use, work, done);
  });
}

// inputGradient(images, labels, lossSpec) -> Promise<{ gradient: Float64Array [n*784], loss: Float64Array [n], logits:
// Float32Array [n*10] }>
Napi::Value ModelWrap::InputGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    check_images_labels(env, in, net_->input_size(), net_->classes());
    const int n = in.count();
    auto grad = std::make_shared<std::vector<double>>(static_cast<size_t>(n) * net_->input_size());
    auto loss = std::make_shared<std::vector<double>>(n);
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(n) * net_->classes());
    Network* net = net_.get();
    auto work = [=]() {
      return net->input_gradient(in.images->data(), in.labels->data(), n, spec, grad->data(), loss->data(),
                                 logits->data());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("gradient", to_js(e, *grad));
      o.Set("loss", to_js(e, *loss));
      o.Set("logits", to_js(e, *logits));
      return o;
    };
    return start(env, &use, work, done);
  });
}

// attackLosses(images, labels, lossSpec) -> Promise<{ loss: Float64Array [n], logits: Float32Array [n*10] }>
Napi::Value ModelWrap::AttackLosses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    check_images_labels(env, in, net_->input_size(), net_->classes());
    const int n = in.count();
    auto loss = std::make_shared<std::vector<double>>(n);
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(n) * net_->classes());
    Network* net = net_.get();
    auto work = [=]() {
      return net->attack_losses(in.images->data(), in.labels->data(), n, spec, loss->data(), logits->data());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("loss", to_js(e, *loss));
      o.Set("logits", to_js(e, *logits));
      return o;
    };
    return start(env, &use, work, done);
  });
}

// sweep(images, labels, lossSpec, skip: Uint8Array [n*784] | null)
//   -> Promise<{ losses: Float64Array [n*1568], base: Float64Array [n] }>
Napi::Value ModelWrap::Sweep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    auto skip = std::make_shared<std::vector<uint8_t>>();
    Napi::Value sv = arg(info, 3);
    const bool has_skip = !sv.IsUndefined() && !sv.IsNull();
    if (has_skip) *skip = copy_u8(sv, "skip");
    check_images_labels(env, in, net_->input_size(), net_->classes());
    const int n = in.count();
    if (has_skip) require_length(env, skip->size(), static_cast<size_t>(n) * net_->plan().positions(), "skip");
    auto losses = std::make_shared<std::vector<double>>(static_cast<size_t>(n) * 2 * net_->plan().positions());
    auto base = std::make_shared<std::vector<double>>(n);
    Network* net = net_.get();
    auto work = [=]() {
      return net->sweep(in.images->data(), in.labels->data(), skip->empty() ? nullptr : skip->data(), n, spec,
                        losses->data(), base->data());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("losses", to_js(e, *losses));
      o.Set("base", to_js(e, *base));
      return o;
    };
    return start(env, &use, work, done);
  });
}

// attack(images, labels, { algorithm: 1..4, budget: 1..784, loss, precision, temperature, wantSaliency })
//   -> Promise<NativeAttackResult> (binding.d.ts)
Napi::Value ModelWrap::Attack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    Napi::Object o = require_object(arg(info, 2), "config");
    AttackConfig cfg;
    cfg.algorithm = static_cast<int>(require_integer(o.Get("algorithm"), "config.algorithm", 1, 4));
    cfg.budget = static_cast<int>(require_integer(o.Get("budget"), "config.budget", 1, net_->plan().positions()));
    cfg.spec = parse_loss_spec(o, "config");
    Napi::Value want_saliency = o.Get("wantSaliency");
    if (!want_saliency.IsUndefined()) cfg.want_saliency = require_bool(want_saliency, "config.wantSaliency");
    check_images_labels(env, in, net_->input_size(), net_->classes());
    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_attack(*net, in.images->data(), in.labels->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      out.Set("attacked", to_js(e, r->attacked));
      out.Set("success", to_js(e, r->success));
      out.Set("iterations", to_js(e, r->iterations));
      out.Set("l0", to_js(e, r->l0));
      out.Set("initialPrediction", to_js(e, r->initial_prediction));
      out.Set("finalPrediction", to_js(e, r->final_prediction));
      out.Set("saliencyZero", to_js(e, r->saliency_zero));
      out.Set("adversarial", to_js(e, r->adversarial));
      out.Set("path", to_js(e, r->path));
      if (cfg.want_saliency) out.Set("saliency", to_js(e, r->saliency));
      return out;
    };
    return start(env, &use, work, done);
  });
}

// Refused while an operation runs (its work still uses the network).
Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (in_flight_ > 0) throw plain_error(info.Env(), "the model is busy with another operation; await it first", kBusy);
  net_.reset();
  pool_.reset();
  return info.Env().Undefined();
}

Napi::Value ModelWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !net_); }

}  // namespace napi
}  // namespace tempered
