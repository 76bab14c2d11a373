#include "model_wrap.h"

#include <cstring>

#include "../core/attack.h"
#include "../core/backends.h"
#include "addon_data.h"
#include "args.h"
#include "dataset_wrap.h"
#include "task.h"

namespace tempered {
namespace napi {

using net::kClasses;
using net::kPixels;
using net::kTotalParams;

namespace {

struct PendingModel {
  std::unique_ptr<Network> net;
  std::string backend;
};

// Reads the training configuration object; every field optional with the paper's default.
TrainConfig parse_train_config(Napi::Value v) {
  TrainConfig c;
  if (v.IsUndefined()) return c;
  Napi::Object o = require_object(v, "config");
  auto get = [&](const char* key) { return o.Get(key); };
  if (!get("learningRate").IsUndefined())
    c.learning_rate = static_cast<float>(require_range(get("learningRate"), "config.learningRate", 0, 1e6, true));
  if (!get("momentum").IsUndefined())
    c.momentum = static_cast<float>(require_range(get("momentum"), "config.momentum", 0, 1, false, true));
  if (!get("temperature").IsUndefined())
    c.temperature = static_cast<float>(require_range(get("temperature"), "config.temperature", 0, 1e6, true));
  if (!get("lossScale").IsUndefined())
    c.loss_scale = static_cast<float>(require_range(get("lossScale"), "config.lossScale", 0, 1e9, true));
  if (!get("l2").IsUndefined()) c.l2_output = static_cast<float>(require_range(get("l2"), "config.l2", 0, 1e6));
  if (!get("dropoutRate").IsUndefined())
    c.dropout_rate = static_cast<float>(require_range(get("dropoutRate"), "config.dropoutRate", 0, 1, false, true));
  if (!get("dropoutSeed").IsUndefined())
    c.dropout_seed = static_cast<uint32_t>(require_integer(get("dropoutSeed"), "config.dropoutSeed", 0, 0xffffffffLL));
  if (!get("softTargets").IsUndefined()) c.use_soft_targets = require_bool(get("softTargets"), "config.softTargets");
  return c;
}

// {loss: 'xent' | 'margin', precision: 'float32' | 'float64', temperature: number}, all optional.
LossSpec parse_loss_spec(Napi::Value v, const std::string& name) {
  LossSpec spec;
  if (v.IsUndefined()) return spec;
  Napi::Object o = require_object(v, name);
  Napi::Value loss = o.Get("loss"), precision = o.Get("precision"), temperature = o.Get("temperature");
  if (!loss.IsUndefined()) {
    std::string l = require_string(loss, name + ".loss");
    if (l == "xent") spec.loss = AttackLoss::kXent;
    else if (l == "margin") spec.loss = AttackLoss::kMargin;
    else throw range_error(v.Env(), name + ".loss must be 'xent' or 'margin' (got '" + l + "')");
  }
  if (!precision.IsUndefined()) {
    std::string p = require_string(precision, name + ".precision");
    if (p == "float32") spec.precision = LossPrecision::kFloat32;
    else if (p == "float64") spec.precision = LossPrecision::kFloat64;
    else throw range_error(v.Env(), name + ".precision must be 'float32' or 'float64' (got '" + p + "')");
  }
  if (!temperature.IsUndefined())
    spec.temperature = static_cast<float>(require_range(temperature, name + ".temperature", 0, 1e30, true));
  return spec;
}

// images [n * 784] (finite) and labels [n] (0..9), copied.
void parse_images_labels(const Napi::CallbackInfo& info, size_t at, std::vector<float>* images, std::vector<int32_t>* labels) {
  Napi::Env env = info.Env();
  Napi::Float32Array im = require_f32(arg(info, at), "images");
  const size_t n = require_multiple(im, im.ElementLength(), kPixels, "images");
  Napi::Int32Array lab = require_i32(arg(info, at + 1), "labels");
  require_length(lab, lab.ElementLength(), n, "labels");
  for (size_t i = 0; i < im.ElementLength(); ++i)
    if (!std::isfinite(im[i])) throw range_error(env, "images[" + std::to_string(i) + "] is not finite", kNotFinite);
  for (size_t i = 0; i < n; ++i)
    if (lab[i] < 0 || lab[i] >= kClasses) throw range_error(env, "labels[" + std::to_string(i) + "] is not a class in 0..9");
  images->assign(im.Data(), im.Data() + im.ElementLength());
  labels->assign(lab.Data(), lab.Data() + n);
}

template <typename T>
Napi::TypedArrayOf<T> to_js(Napi::Env env, const std::vector<T>& v) {
  auto a = Napi::TypedArrayOf<T>::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), sizeof(T) * v.size());
  return a;
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelWrap::Backend>("backend"),
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
    tempered::Backend* backend = nullptr;
    Status st = get_backend(backend_name, &backend);
    if (!st.ok()) throw status_error(env, st);
    PendingModel pending;
    pending.backend = backend_name;
    pending.net = std::make_unique<Network>(backend);
    st = pending.net->allocate();
    if (st.ok()) st = pending.net->init_glorot(seed);
    if (!st.ok()) throw status_error(env, st);
    return addon_data(env).model_constructor.New({Napi::External<PendingModel>::New(env, &pending)});
  });
}

Napi::Promise ModelWrap::start_exclusive(Napi::Env env, Task::Work work, Task::Done done) {
  busy_ = true;
  return Task::Start(env, std::move(work), std::move(done), [this] { busy_ = false; }, {Value()});
}

void ModelWrap::check_idle(Napi::Env env) const {
  if (!net_) throw plain_error(env, "the model has been disposed", kDisposed);
  if (busy_) throw plain_error(env, "the model is busy with another operation; await it first", kBusy);
}

Napi::Value ModelWrap::Backend(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend_name_); }

Napi::Value ModelWrap::ParameterCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), kTotalParams); }

// The flat parameter and velocity arrays share their checks and copies.
Napi::Value ModelWrap::GetFlat(Napi::Env env, Status (Network::*get)(float*)) {
  check_idle(env);
  Napi::Float32Array out = Napi::Float32Array::New(env, kTotalParams);
  Status st = (net_.get()->*get)(out.Data());
  if (!st.ok()) throw status_error(env, st);
  return out;
}

Napi::Value ModelWrap::SetFlat(const Napi::CallbackInfo& info, const char* name, Status (Network::*set)(const float*)) {
  Napi::Env env = info.Env();
  check_idle(env);
  Napi::Float32Array p = require_f32(arg(info, 0), name);
  require_length(p, p.ElementLength(), kTotalParams, name);
  for (size_t i = 0; i < p.ElementLength(); ++i)
    if (!std::isfinite(p[i])) throw range_error(env, std::string(name) + "[" + std::to_string(i) + "] is not finite", kNotFinite);
  Status st = (net_.get()->*set)(p.Data());
  if (!st.ok()) throw status_error(env, st);
  return env.Undefined();
}

Napi::Value ModelWrap::GetParameters(const Napi::CallbackInfo& info) { return GetFlat(info.Env(), &Network::get_parameters); }
Napi::Value ModelWrap::SetParameters(const Napi::CallbackInfo& info) { return SetFlat(info, "parameters", &Network::set_parameters); }
Napi::Value ModelWrap::GetVelocity(const Napi::CallbackInfo& info) { return GetFlat(info.Env(), &Network::get_velocity); }
Napi::Value ModelWrap::SetVelocity(const Napi::CallbackInfo& info) { return SetFlat(info, "velocity", &Network::set_velocity); }

// trainSteps(dataset, indices, batchSize, config, firstStep)
//   -> Promise<{ lossSum: Float64Array, correct: Int32Array, samples: Int32Array }>, one entry per batch.
Napi::Value ModelWrap::TrainSteps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    DatasetWrap* ds = DatasetWrap::FromArg(arg(info, 0), "dataset");
    if (ds->backend_name() != backend_name_)
      throw plain_error(env, "the dataset lives on backend '" + ds->backend_name() + "' but the model on '" + backend_name_ + "'",
                        kBackendMismatch);
    Napi::Int32Array idx = require_i32(arg(info, 1), "indices");
    if (idx.ElementLength() == 0) throw range_error(env, "indices must not be empty", kInvalidLength);
    const int count = ds->data()->count;
    for (size_t i = 0; i < idx.ElementLength(); ++i)
      if (idx[i] < 0 || idx[i] >= count)
        throw range_error(env, "indices[" + std::to_string(i) + "] = " + std::to_string(idx[i]) + " is outside the dataset (0.." +
                                   std::to_string(count - 1) + ")");
    const int batch = static_cast<int>(require_integer(arg(info, 2), "batchSize", 1, 1 << 16));
    TrainConfig cfg = parse_train_config(arg(info, 3));
    if (cfg.use_soft_targets && !ds->data()->has_soft())
      throw range_error(env, "config.softTargets is true but the dataset has no soft targets");
    const uint32_t first_step = static_cast<uint32_t>(require_integer(arg(info, 4), "firstStep", 0, 0xffffffffLL));

    auto indices = std::make_shared<std::vector<int32_t>>(idx.Data(), idx.Data() + idx.ElementLength());
    const int batches = static_cast<int>((indices->size() + batch - 1) / batch);
    auto loss = std::make_shared<std::vector<double>>(batches);
    auto correct = std::make_shared<std::vector<int32_t>>(batches);
    auto samples = std::make_shared<std::vector<int32_t>>(batches);
    Network* net = net_.get();
    DeviceDataset* data = ds->data();
    auto work = [=]() -> Status {
      for (int b = 0; b < batches; ++b) {
        const int start = b * batch;
        const int n = std::min<int>(batch, static_cast<int>(indices->size()) - start);
        BatchResult r;
        TEMPERED_TRY(net->train_step(*data, indices->data() + start, n, cfg, first_step + b, &r));
        (*loss)[b] = r.loss_sum;
        (*correct)[b] = r.correct;
        (*samples)[b] = n;
      }
      return Status::Ok();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      Napi::Float64Array l = Napi::Float64Array::New(e, batches);
      Napi::Int32Array c = Napi::Int32Array::New(e, batches);
      Napi::Int32Array s = Napi::Int32Array::New(e, batches);
      std::memcpy(l.Data(), loss->data(), sizeof(double) * batches);
      std::memcpy(c.Data(), correct->data(), sizeof(int32_t) * batches);
      std::memcpy(s.Data(), samples->data(), sizeof(int32_t) * batches);
      out.Set("lossSum", l);
      out.Set("correct", c);
      out.Set("samples", s);
      return out;
    };
    busy_ = true;
    ds->acquire();
    return Task::Start(env, work, done, [this, ds] { busy_ = false; ds->release(); }, {Value(), ds->Value()});
  });
}

// evaluate(dataset, begin, end, temperature, wantLogits)
//   -> Promise<{ lossSum: number, correct: number, count: number, logits?: Float32Array }>
Napi::Value ModelWrap::Evaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    DatasetWrap* ds = DatasetWrap::FromArg(arg(info, 0), "dataset");
    if (ds->backend_name() != backend_name_)
      throw plain_error(env, "the dataset lives on backend '" + ds->backend_name() + "' but the model on '" + backend_name_ + "'",
                        kBackendMismatch);
    const int count = ds->data()->count;
    const int begin = static_cast<int>(require_integer(arg(info, 1), "begin", 0, count));
    const int end = static_cast<int>(require_integer(arg(info, 2), "end", begin, count));
    const float temperature = static_cast<float>(require_range(arg(info, 3), "temperature", 0, 1e6, true));
    const bool want_logits = require_bool(arg(info, 4), "wantLogits");
    auto result = std::make_shared<BatchResult>();
    auto logits = std::make_shared<std::vector<float>>(want_logits ? static_cast<size_t>(end - begin) * kClasses : 0);
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
      if (want_logits) {
        Napi::Float32Array l = Napi::Float32Array::New(e, logits->size());
        if (!logits->empty()) std::memcpy(l.Data(), logits->data(), sizeof(float) * logits->size());
        out.Set("logits", l);
      }
      return out;
    };
    busy_ = true;
    ds->acquire();
    return Task::Start(env, work, done, [this, ds] { busy_ = false; ds->release(); }, {Value(), ds->Value()});
  });
}

// predict(images: Float32Array [n * 784]) -> Promise<Float32Array [n * 10]> (logits)
Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    Napi::Float32Array images = require_f32(arg(info, 0), "images");
    const size_t n = require_multiple(images, images.ElementLength(), kPixels, "images");
    for (size_t i = 0; i < images.ElementLength(); ++i)
      if (!std::isfinite(images[i])) throw range_error(env, "images[" + std::to_string(i) + "] is not finite", kNotFinite);
    auto host = std::make_shared<std::vector<float>>(images.Data(), images.Data() + images.ElementLength());
    auto logits = std::make_shared<std::vector<float>>(n * kClasses);
    Network* net = net_.get();
    auto work = [=]() -> Status { return net->predict(host->data(), static_cast<int>(n), logits->data()); };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Float32Array out = Napi::Float32Array::New(e, logits->size());
      std::memcpy(out.Data(), logits->data(), sizeof(float) * logits->size());
      return out;
    };
    return start_exclusive(env, work, done);
  });
}

// trace(images, labels, softTargets | null, config, step) -> Promise<Record<string, Float32Array>>
Napi::Value ModelWrap::Trace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    Napi::Float32Array images = require_f32(arg(info, 0), "images");
    const size_t n = require_multiple(images, images.ElementLength(), kPixels, "images");
    Napi::Int32Array labels = require_i32(arg(info, 1), "labels");
    require_length(labels, labels.ElementLength(), n, "labels");
    for (size_t i = 0; i < n; ++i)
      if (labels[i] < 0 || labels[i] >= kClasses) throw range_error(env, "labels[" + std::to_string(i) + "] is not a class in 0..9");
    auto soft = std::make_shared<std::vector<float>>();
    Napi::Value soft_v = arg(info, 2);
    if (!soft_v.IsNull() && !soft_v.IsUndefined()) {
      Napi::Float32Array s = require_f32(soft_v, "softTargets");
      require_length(s, s.ElementLength(), n * kClasses, "softTargets");
      soft->assign(s.Data(), s.Data() + s.ElementLength());
      for (size_t i = 0; i < soft->size(); ++i)
        if (!std::isfinite((*soft)[i])) throw range_error(env, "softTargets[" + std::to_string(i) + "] is not finite", kNotFinite);
    }
    for (size_t i = 0; i < images.ElementLength(); ++i)
      if (!std::isfinite(images[i])) throw range_error(env, "images[" + std::to_string(i) + "] is not finite", kNotFinite);
    TrainConfig cfg = parse_train_config(arg(info, 3));
    const uint32_t step = static_cast<uint32_t>(require_integer(arg(info, 4), "step", 0, 0xffffffffLL));
    auto host_images = std::make_shared<std::vector<float>>(images.Data(), images.Data() + images.ElementLength());
    auto host_labels = std::make_shared<std::vector<int32_t>>(labels.Data(), labels.Data() + n);
    auto trace = std::make_shared<tempered::Trace>();
    Network* net = net_.get();
    auto work = [=]() -> Status {
      return net->trace(host_images->data(), host_labels->data(), soft->empty() ? nullptr : soft->data(),
                        static_cast<int>(n), cfg, step, trace.get());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      for (auto& [name, values] : trace->tensors) {
        Napi::Float32Array a = Napi::Float32Array::New(e, values.size());
        std::memcpy(a.Data(), values.data(), sizeof(float) * values.size());
        out.Set(name, a);
      }
      return out;
    };
    return start_exclusive(env, work, done);
  });
}

// inputGradient(images, labels, lossSpec) -> Promise<{ gradient: Float64Array [n*784], loss: Float64Array [n], logits: Float32Array [n*10] }>
Napi::Value ModelWrap::InputGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    auto images = std::make_shared<std::vector<float>>();
    auto labels = std::make_shared<std::vector<int32_t>>();
    parse_images_labels(info, 0, images.get(), labels.get());
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    const int n = static_cast<int>(labels->size());
    auto grad = std::make_shared<std::vector<double>>(static_cast<size_t>(n) * kPixels);
    auto loss = std::make_shared<std::vector<double>>(n);
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(n) * kClasses);
    Network* net = net_.get();
    auto work = [=]() { return net->input_gradient(images->data(), labels->data(), n, spec, grad->data(), loss->data(), logits->data()); };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("gradient", to_js(e, *grad));
      o.Set("loss", to_js(e, *loss));
      o.Set("logits", to_js(e, *logits));
      return o;
    };
    return start_exclusive(env, work, done);
  });
}

// attackLosses(images, labels, lossSpec) -> Promise<{ loss: Float64Array [n], logits: Float32Array [n*10] }>
Napi::Value ModelWrap::AttackLosses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    auto images = std::make_shared<std::vector<float>>();
    auto labels = std::make_shared<std::vector<int32_t>>();
    parse_images_labels(info, 0, images.get(), labels.get());
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    const int n = static_cast<int>(labels->size());
    auto loss = std::make_shared<std::vector<double>>(n);
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(n) * kClasses);
    Network* net = net_.get();
    auto work = [=]() { return net->attack_losses(images->data(), labels->data(), n, spec, loss->data(), logits->data()); };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("loss", to_js(e, *loss));
      o.Set("logits", to_js(e, *logits));
      return o;
    };
    return start_exclusive(env, work, done);
  });
}

// sweep(images, labels, lossSpec, skip: Uint8Array [n*784] | null)
//   -> Promise<{ losses: Float64Array [n*1568], base: Float64Array [n] }>
Napi::Value ModelWrap::Sweep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    auto images = std::make_shared<std::vector<float>>();
    auto labels = std::make_shared<std::vector<int32_t>>();
    parse_images_labels(info, 0, images.get(), labels.get());
    const LossSpec spec = parse_loss_spec(arg(info, 2), "lossSpec");
    const int n = static_cast<int>(labels->size());
    auto skip = std::make_shared<std::vector<uint8_t>>();
    Napi::Value sv = arg(info, 3);
    if (!sv.IsUndefined() && !sv.IsNull()) {
      auto s = require_typed<uint8_t, napi_uint8_array>(sv, "skip", "Uint8Array");
      require_length(s, s.ElementLength(), static_cast<size_t>(n) * kPixels, "skip");
      skip->assign(s.Data(), s.Data() + s.ElementLength());
    }
    auto losses = std::make_shared<std::vector<double>>(static_cast<size_t>(n) * 2 * kPixels);
    auto base = std::make_shared<std::vector<double>>(n);
    Network* net = net_.get();
    auto work = [=]() {
      return net->sweep(images->data(), labels->data(), skip->empty() ? nullptr : skip->data(), n, spec, losses->data(), base->data());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object o = Napi::Object::New(e);
      o.Set("losses", to_js(e, *losses));
      o.Set("base", to_js(e, *base));
      return o;
    };
    return start_exclusive(env, work, done);
  });
}

// attack(images, labels, { algorithm: 1..4, budget: 1..784, loss, precision, temperature, wantSaliency })
//   -> Promise<NativeAttackResult> (binding.d.ts)
Napi::Value ModelWrap::Attack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    check_idle(env);
    auto images = std::make_shared<std::vector<float>>();
    auto labels = std::make_shared<std::vector<int32_t>>();
    parse_images_labels(info, 0, images.get(), labels.get());
    Napi::Object o = require_object(arg(info, 2), "config");
    AttackConfig cfg;
    cfg.algorithm = static_cast<int>(require_integer(o.Get("algorithm"), "config.algorithm", 1, 4));
    cfg.budget = static_cast<int>(require_integer(o.Get("budget"), "config.budget", 1, kPixels));
    cfg.spec = parse_loss_spec(o, "config");
    if (!o.Get("wantSaliency").IsUndefined()) cfg.want_saliency = require_bool(o.Get("wantSaliency"), "config.wantSaliency");
    const int n = static_cast<int>(labels->size());
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_attack(*net, images->data(), labels->data(), n, cfg, r.get()); };
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
    return start_exclusive(env, work, done);
  });
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (busy_) throw plain_error(info.Env(), "the model is busy with another operation; await it first", kBusy);
  net_.reset();
  return info.Env().Undefined();
}

Napi::Value ModelWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !net_); }

}  // namespace napi
}  // namespace tempered
