// Model.jsma() and Model.pgd(): the attacks of the literature (native/core/attack.h). Same
// order as every entry point of the model: claim the model, read every argument once into
// plain C++ values (typed arrays copied at once), check the copies, then start the work.
#include <memory>
#include <string>
#include <vector>

#include "../core/attack.h"
#include "args.h"
#include "in_use.h"
#include "limits.h"
#include "model_args.h"
#include "model_wrap.h"

namespace tempered {
namespace napi {

namespace {

Napi::Value results_to_js(Napi::Env e, const AttackResults& r, bool with_linf) {
  Napi::Object out = Napi::Object::New(e);
  out.Set("attacked", to_js(e, r.attacked));
  out.Set("success", to_js(e, r.success));
  out.Set("iterations", to_js(e, r.iterations));
  out.Set("l0", to_js(e, r.l0));
  out.Set("initialPrediction", to_js(e, r.initial_prediction));
  out.Set("finalPrediction", to_js(e, r.final_prediction));
  out.Set("saliencyZero", to_js(e, r.saliency_zero));
  out.Set("adversarial", to_js(e, r.adversarial));
  out.Set("path", to_js(e, r.path));
  if (with_linf) out.Set("linf", to_js(e, r.linf));
  return out;
}

}  // namespace

// jsma(images, labels, targets: Int32Array [n], { variant: 'softmax' | 'logits', temperature?, budget })
//   -> Promise<NativeAttackResult>
Napi::Value ModelWrap::Jsma(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto targets = std::make_shared<std::vector<int32_t>>(copy_i32(arg(info, 2), "targets"));
    Napi::Object o = require_object(arg(info, 3), "config");
    const std::string variant = require_string(o.Get("variant"), "config.variant");
    Napi::Value temperature = o.Get("temperature");
    JsmaConfig cfg;
    if (!temperature.IsUndefined())
      cfg.temperature = static_cast<float>(require_limit(temperature, "config.temperature", kLossTemperatureLimit));
    cfg.budget = static_cast<int>(require_integer(o.Get("budget"), "config.budget", 2, net_->input_size()));

    check_images_labels(env, in, net_->input_size(), net_->classes());
    require_length(env, targets->size(), in.labels->size(), "targets");
    require_classes(env, *targets, net_->classes(), "targets");
    if (variant == "logits")
      cfg.on_logits = true;
    else if (variant != "softmax")
      throw range_error(env, "config.variant must be 'softmax' or 'logits' (got '" + variant + "')");

    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() {
      return run_jsma(*net, in.images->data(), in.labels->data(), targets->data(), n, cfg, r.get());
    };
    auto done = [=](Napi::Env e) { return results_to_js(e, *r, false); };
    return start(env, &use, work, done);
  });
}

// pgd(images, labels, keys: Uint32Array [n], { epsilon, steps, stepSize, randomStart, seed, loss?, precision?,
// temperature? })
//   -> Promise<NativeAttackResult & { linf: Float32Array }>
Napi::Value ModelWrap::Pgd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto keys = std::make_shared<std::vector<uint32_t>>(
        copy_typed<uint32_t, napi_uint32_array>(arg(info, 2), "keys", "Uint32Array"));
    Napi::Object o = require_object(arg(info, 3), "config");
    PgdConfig cfg;
    cfg.epsilon = static_cast<float>(require_limit(o.Get("epsilon"), "config.epsilon", kEpsilonLimit));
    cfg.steps = static_cast<int>(require_integer(o.Get("steps"), "config.steps", 1, 1000000));
    cfg.step_size = static_cast<float>(require_limit(o.Get("stepSize"), "config.stepSize", kStepSizeLimit));
    Napi::Value random_start = o.Get("randomStart");
    if (!random_start.IsUndefined()) cfg.random_start = require_bool(random_start, "config.randomStart");
    Napi::Value seed = o.Get("seed");
    if (!seed.IsUndefined()) cfg.seed = static_cast<uint32_t>(require_integer(seed, "config.seed", 0, 0xffffffffLL));
    cfg.spec = parse_loss_spec(o, "config");

    check_images_labels(env, in, net_->input_size(), net_->classes());
    require_length(env, keys->size(), in.labels->size(), "keys");

    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_pgd(*net, in.images->data(), in.labels->data(), keys->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) { return results_to_js(e, *r, true); };
    return start(env, &use, work, done);
  });
}

}  // namespace napi
}  // namespace tempered
