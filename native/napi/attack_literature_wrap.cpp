// Model.jsma() and Model.pgd(): the attacks of the literature (native/core/attack.h).
// Every input is copied and every option read into a plain struct first; only then are
// they checked and the model's state tested, so a getter on an options object can neither
// slip past a check nor change what the work sees.
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/attack.h"
#include "args.h"
#include "model_wrap.h"

namespace tempered {
namespace napi {

using net::kClasses;
using net::kPixels;

namespace {

// A typed array copied out of JS, with the name of the argument for the checks that follow.
template <typename T>
struct Copied {
  std::string name;
  bool present = false;
  std::vector<T> values;
};

template <typename T, napi_typedarray_type kType>
Copied<T> copy_typed(Napi::Value v, const std::string& name, const char* type_name) {
  Copied<T> c;
  c.name = name;
  auto a = require_typed<T, kType>(v, name, type_name);
  c.present = true;
  c.values.assign(a.Data(), a.Data() + a.ElementLength());
  return c;
}

// An option as read from the config object: undefined, or its value converted to C++.
struct OptionalNumber {
  bool present = false;
  double value = 0;
};
struct OptionalString {
  bool present = false;
  std::string value;
};

OptionalNumber read_number(Napi::Object o, const char* key, const std::string& owner) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return {};
  return {true, require_number(v, owner + "." + key)};
}

OptionalString read_string(Napi::Object o, const char* key, const std::string& owner) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return {};
  return {true, require_string(v, owner + "." + key)};
}

bool read_bool(Napi::Object o, const char* key, const std::string& owner, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : require_bool(v, owner + "." + key);
}

void check_images_labels(Napi::Env env, const std::vector<float>& images, const std::vector<int32_t>& labels) {
  if (images.empty() || images.size() % kPixels != 0)
    throw range_error(env, "images must hold a positive whole number of 784-element rows (got length " + std::to_string(images.size()) + ")",
                      kInvalidLength);
  const size_t n = images.size() / kPixels;
  if (labels.size() != n)
    throw range_error(env, "labels must have length " + std::to_string(n) + " (got " + std::to_string(labels.size()) + ")", kInvalidLength);
  for (size_t i = 0; i < images.size(); ++i)
    if (!std::isfinite(images[i])) throw range_error(env, "images[" + std::to_string(i) + "] is not finite", kNotFinite);
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= kClasses) throw range_error(env, "labels[" + std::to_string(i) + "] is not a class in 0..9");
}

double check_range(Napi::Env env, double x, const std::string& name, double lo, double hi, bool lo_open) {
  if (!std::isfinite(x)) throw range_error(env, name + " must be finite (got " + std::to_string(x) + ")", kNotFinite);
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
    throw range_error(env, name + " must be in " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " + std::to_string(hi) + "] (got " +
                               std::to_string(x) + ")");
  return x;
}

int64_t check_integer(Napi::Env env, double x, const std::string& name, int64_t lo, int64_t hi) {
  check_range(env, x, name, static_cast<double>(lo), static_cast<double>(hi), false);
  if (x != std::floor(x)) throw range_error(env, name + " must be an integer (got " + std::to_string(x) + ")");
  return static_cast<int64_t>(x);
}

Napi::Value results_to_js(Napi::Env e, const AttackResults& r, bool with_linf) {
  auto to_js = [&](const auto& v) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    auto a = Napi::TypedArrayOf<T>::New(e, v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), sizeof(T) * v.size());
    return a;
  };
  Napi::Object out = Napi::Object::New(e);
  out.Set("attacked", to_js(r.attacked));
  out.Set("success", to_js(r.success));
  out.Set("iterations", to_js(r.iterations));
  out.Set("l0", to_js(r.l0));
  out.Set("initialPrediction", to_js(r.initial_prediction));
  out.Set("finalPrediction", to_js(r.final_prediction));
  out.Set("saliencyZero", to_js(r.saliency_zero));
  out.Set("adversarial", to_js(r.adversarial));
  out.Set("path", to_js(r.path));
  if (with_linf) out.Set("linf", to_js(r.linf));
  return out;
}

}  // namespace

// jsma(images, labels, targets: Int32Array [n], { variant: 'softmax' | 'logits', temperature?, budget })
//   -> Promise<NativeAttackResult>
Napi::Value ModelWrap::Jsma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    // 1. Copy and read everything.
    auto images = std::make_shared<std::vector<float>>(copy_typed<float, napi_float32_array>(arg(info, 0), "images", "Float32Array").values);
    auto labels = std::make_shared<std::vector<int32_t>>(copy_typed<int32_t, napi_int32_array>(arg(info, 1), "labels", "Int32Array").values);
    auto targets = std::make_shared<std::vector<int32_t>>(copy_typed<int32_t, napi_int32_array>(arg(info, 2), "targets", "Int32Array").values);
    Napi::Object o = require_object(arg(info, 3), "config");
    const OptionalString variant = read_string(o, "variant", "config");
    const OptionalNumber temperature = read_number(o, "temperature", "config");
    const OptionalNumber budget = read_number(o, "budget", "config");
    // 2. Check the copies.
    check_images_labels(env, *images, *labels);
    const int n = static_cast<int>(labels->size());
    if (targets->size() != labels->size())
      throw range_error(env, "targets must have length " + std::to_string(n) + " (got " + std::to_string(targets->size()) + ")", kInvalidLength);
    for (int i = 0; i < n; ++i)
      if ((*targets)[i] < 0 || (*targets)[i] >= kClasses)
        throw range_error(env, "targets[" + std::to_string(i) + "] is not a class in 0..9");
    JsmaConfig cfg;
    if (!variant.present) throw type_error(env, "config.variant must be a string");
    if (variant.value == "logits") cfg.on_logits = true;
    else if (variant.value != "softmax")
      throw range_error(env, "config.variant must be 'softmax' or 'logits' (got '" + variant.value + "')");
    if (temperature.present) cfg.temperature = static_cast<float>(check_range(env, temperature.value, "config.temperature", 0, 1e30, true));
    if (!budget.present) throw type_error(env, "config.budget must be a number");
    cfg.budget = static_cast<int>(check_integer(env, budget.value, "config.budget", 2, kPixels));
    // 3. Only now the model's state.
    check_idle(env);
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_jsma(*net, images->data(), labels->data(), targets->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) { return results_to_js(e, *r, false); };
    return start_exclusive(env, work, done);
  });
}

// pgd(images, labels, keys: Uint32Array [n], { epsilon, steps, stepSize, randomStart, seed, loss?, precision?, temperature? })
//   -> Promise<NativeAttackResult & { linf: Float32Array }>
Napi::Value ModelWrap::Pgd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto images = std::make_shared<std::vector<float>>(copy_typed<float, napi_float32_array>(arg(info, 0), "images", "Float32Array").values);
    auto labels = std::make_shared<std::vector<int32_t>>(copy_typed<int32_t, napi_int32_array>(arg(info, 1), "labels", "Int32Array").values);
    auto keys = std::make_shared<std::vector<uint32_t>>(copy_typed<uint32_t, napi_uint32_array>(arg(info, 2), "keys", "Uint32Array").values);
    Napi::Object o = require_object(arg(info, 3), "config");
    const OptionalNumber epsilon = read_number(o, "epsilon", "config");
    const OptionalNumber steps = read_number(o, "steps", "config");
    const OptionalNumber step_size = read_number(o, "stepSize", "config");
    const bool random_start = read_bool(o, "randomStart", "config", true);
    const OptionalNumber seed = read_number(o, "seed", "config");
    const OptionalString loss = read_string(o, "loss", "config");
    const OptionalString precision = read_string(o, "precision", "config");
    const OptionalNumber temperature = read_number(o, "temperature", "config");

    check_images_labels(env, *images, *labels);
    const int n = static_cast<int>(labels->size());
    if (keys->size() != labels->size())
      throw range_error(env, "keys must have length " + std::to_string(n) + " (got " + std::to_string(keys->size()) + ")", kInvalidLength);
    PgdConfig cfg;
    if (!epsilon.present) throw type_error(env, "config.epsilon must be a number");
    cfg.epsilon = static_cast<float>(check_range(env, epsilon.value, "config.epsilon", 0, 1, true));
    if (!steps.present) throw type_error(env, "config.steps must be a number");
    cfg.steps = static_cast<int>(check_integer(env, steps.value, "config.steps", 1, 1000000));
    if (!step_size.present) throw type_error(env, "config.stepSize must be a number");
    cfg.step_size = static_cast<float>(check_range(env, step_size.value, "config.stepSize", 0, 1, true));
    cfg.random_start = random_start;
    if (seed.present) cfg.seed = static_cast<uint32_t>(check_integer(env, seed.value, "config.seed", 0, 0xffffffffLL));
    if (loss.present) {
      if (loss.value == "xent") cfg.spec.loss = AttackLoss::kXent;
      else if (loss.value == "margin") cfg.spec.loss = AttackLoss::kMargin;
      else throw range_error(env, "config.loss must be 'xent' or 'margin' (got '" + loss.value + "')");
    }
    if (precision.present) {
      if (precision.value == "float32") cfg.spec.precision = LossPrecision::kFloat32;
      else if (precision.value == "float64") cfg.spec.precision = LossPrecision::kFloat64;
      else throw range_error(env, "config.precision must be 'float32' or 'float64' (got '" + precision.value + "')");
    }
    if (temperature.present)
      cfg.spec.temperature = static_cast<float>(check_range(env, temperature.value, "config.temperature", 0, 1e30, true));

    check_idle(env);
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_pgd(*net, images->data(), labels->data(), keys->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) { return results_to_js(e, *r, true); };
    return start_exclusive(env, work, done);
  });
}

}  // namespace napi
}  // namespace tempered
