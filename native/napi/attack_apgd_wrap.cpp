// Model.apgd(), Model.apgdLoss() and apgdSchedule(): APGD (native/core/apgd.h). Same order as
// attack_literature_wrap.cpp: claim the model, read every argument once into plain C++
// values (typed arrays copied at once), check the copies, then start the work.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../core/apgd.h"
#include "args.h"
#include "in_use.h"
#include "limits.h"
#include "model_args.h"
#include "model_wrap.h"

namespace tempered {
namespace napi {

namespace {

// config.loss, and for 'ce' its temperature and precision (refused for the DLR losses, which
// have neither).
void read_loss(Napi::Object o, ApgdConfig* cfg) {
  Napi::Env env = o.Env();
  const std::string loss = require_string(o.Get("loss"), "config.loss");
  if (loss == "ce")
    cfg->loss = ApgdLoss::kCe;
  else if (loss == "dlr")
    cfg->loss = ApgdLoss::kDlr;
  else if (loss == "dlr-targeted")
    cfg->loss = ApgdLoss::kDlrTargeted;
  else
    throw range_error(env, "config.loss must be 'ce', 'dlr' or 'dlr-targeted' (got '" + loss + "')");
  cfg->spec.loss = AttackLoss::kXent;
  Napi::Value temperature = o.Get("temperature"), precision = o.Get("precision");
  if (cfg->loss != ApgdLoss::kCe && !(temperature.IsUndefined() && precision.IsUndefined()))
    throw range_error(env, "config.temperature and config.precision apply to loss 'ce' only (DLR is scale-invariant)");
  if (!temperature.IsUndefined())
    cfg->spec.temperature = static_cast<float>(require_limit(temperature, "config.temperature", kLossTemperatureLimit));
  if (!precision.IsUndefined()) {
    const std::string p = require_string(precision, "config.precision");
    if (p == "float32")
      cfg->spec.precision = LossPrecision::kFloat32;
    else if (p == "float64")
      cfg->spec.precision = LossPrecision::kFloat64;
    else
      throw range_error(env, "config.precision must be 'float32' or 'float64' (got '" + p + "')");
  }
}

// The DLR losses read the 3rd (targeted: and 4th) largest logit.
void require_dlr_classes(Napi::Env env, const ApgdConfig& cfg, int classes) {
  const int need = cfg.loss == ApgdLoss::kDlr ? 3 : cfg.loss == ApgdLoss::kDlrTargeted ? 4 : 2;
  if (classes < need)
    throw range_error(env, "config.loss '" + std::string(cfg.loss == ApgdLoss::kDlr ? "dlr" : "dlr-targeted") +
                               "' needs at least " + std::to_string(need) + " classes (the model has " +
                               std::to_string(classes) + ")");
}

}  // namespace

// apgd(images, labels, keys: Uint32Array [n], { loss: 'ce' | 'dlr' | 'dlr-targeted', epsilon, steps, restarts?,
// targetClasses?, seed?, temperature?, precision? }) -> Promise<NativeAttackResult & { linf: Float32Array }>
Napi::Value ModelWrap::Apgd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto keys = std::make_shared<std::vector<uint32_t>>(
        copy_typed<uint32_t, napi_uint32_array>(arg(info, 2), "keys", "Uint32Array"));
    Napi::Object o = require_object(arg(info, 3), "config");
    ApgdConfig cfg;
    read_loss(o, &cfg);
    cfg.epsilon = static_cast<float>(require_limit(o.Get("epsilon"), "config.epsilon", kEpsilonLimit));
    cfg.steps = static_cast<int>(require_integer(o.Get("steps"), "config.steps", 1, 100000));
    Napi::Value restarts = o.Get("restarts"), target_classes = o.Get("targetClasses"), seed = o.Get("seed");
    if (!restarts.IsUndefined()) cfg.restarts = static_cast<int>(require_integer(restarts, "config.restarts", 1, 1000));
    if (!seed.IsUndefined()) cfg.seed = static_cast<uint32_t>(require_integer(seed, "config.seed", 0, 0xffffffffLL));
    const int classes = net_->classes();
    if (cfg.loss == ApgdLoss::kDlrTargeted) {
      cfg.target_classes = std::min(9, classes - 1);
      if (!target_classes.IsUndefined())
        cfg.target_classes =
            static_cast<int>(require_integer(target_classes, "config.targetClasses", 1, std::max(1, classes - 1)));
    } else if (!target_classes.IsUndefined()) {
      throw range_error(env, "config.targetClasses applies to loss 'dlr-targeted' only");
    }

    check_images_labels(env, in, net_->input_size(), classes);
    require_length(env, keys->size(), in.labels->size(), "keys");
    require_dlr_classes(env, cfg, classes);

    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_apgd(*net, in.images->data(), in.labels->data(), keys->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) {
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
      out.Set("linf", to_js(e, r->linf));
      return out;
    };
    return start(env, &use, work, done);
  });
}

// apgdLoss(images, labels, targets: Int32Array [n], { loss, temperature?, precision? })
//   -> Promise<{ loss: Float64Array [n], gradient: Float64Array [n * inputSize], logits }>:
// the loss APGD follows and its input gradient (targets are read by 'dlr-targeted' only).
Napi::Value ModelWrap::ApgdLossGradient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto targets = std::make_shared<std::vector<int32_t>>(copy_i32(arg(info, 2), "targets"));
    Napi::Object o = require_object(arg(info, 3), "config");
    ApgdConfig cfg;
    read_loss(o, &cfg);
    check_images_labels(env, in, net_->input_size(), net_->classes());
    require_length(env, targets->size(), in.labels->size(), "targets");
    require_classes(env, *targets, net_->classes(), "targets");
    require_dlr_classes(env, cfg, net_->classes());
    const int n = in.count();
    auto grad = std::make_shared<std::vector<double>>(static_cast<size_t>(n) * net_->input_size());
    auto loss = std::make_shared<std::vector<double>>(n);
    auto logits = std::make_shared<std::vector<float>>(static_cast<size_t>(n) * net_->classes());
    Network* net = net_.get();
    auto work = [=]() {
      return apgd_loss_gradient(*net, in.images->data(), in.labels->data(), targets->data(), n, cfg, grad->data(),
                                loss->data(), logits->data());
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = Napi::Object::New(e);
      out.Set("loss", to_js(e, *loss));
      out.Set("gradient", to_js(e, *grad));
      out.Set("logits", to_js(e, *logits));
      return out;
    };
    return start(env, &use, work, done);
  });
}

// apgdSchedule(steps, losses: Float64Array) -> { checkpoints: Int32Array, newMax: Uint8Array,
// halve: Uint8Array }: the decisions of one run whose iterates x^0, x^1, ... have these
// losses (entry 0 starts the run; at most steps + 1 entries).
Napi::Value ModelWrap::ApgdScheduleOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int steps = static_cast<int>(require_integer(arg(info, 0), "steps", 1, 100000));
    const std::vector<double> losses = copy_typed<double, napi_float64_array>(arg(info, 1), "losses", "Float64Array");
    if (losses.empty() || losses.size() > static_cast<size_t>(steps) + 1)
      throw range_error(env, "losses must hold 1.." + std::to_string(steps + 1) + " entries", kInvalidLength);
    const std::vector<int> w = apgd_checkpoints(steps);
    ApgdSchedule schedule(&w);
    std::vector<uint8_t> new_max(losses.size(), 0), halve(losses.size(), 0);
    schedule.start(losses[0]);
    for (size_t j = 1; j < losses.size(); ++j) {
      const ApgdSchedule::Decision d = schedule.observe(static_cast<int>(j), losses[j]);
      new_max[j] = d.new_max;
      halve[j] = d.halve;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("checkpoints", to_js(env, std::vector<int32_t>(w.begin(), w.end())));
    out.Set("newMax", to_js(env, new_max));
    out.Set("halve", to_js(env, halve));
    return out;
  });
}

}  // namespace napi
}  // namespace tempered
