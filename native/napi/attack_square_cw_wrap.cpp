// Model.square() and Model.cwL2(): the Square attack and Carlini-Wagner L2
// (native/core/square_attack.h, native/core/cw_l2.h). Same order as every entry point of the
// model: claim the model, read every argument once into plain C++ values (typed arrays
// copied at once), check the copies, then start the work.
#include <memory>
#include <string>
#include <vector>

#include "../core/cw_l2.h"
#include "../core/square_attack.h"
#include "args.h"
#include "in_use.h"
#include "limits.h"
#include "model_args.h"
#include "model_wrap.h"

namespace tempered {
namespace napi {

namespace {

Napi::Object outcomes_to_js(Napi::Env e, const AttackResults& r) {
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
  out.Set("linf", to_js(e, r.linf));
  return out;
}

// An optional number in [lo, hi] (open ends when asked), else the default.
double optional_range(Napi::Object o, const char* key, double fallback, double lo, double hi, bool lo_open) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : require_range(v, std::string("config.") + key, lo, hi, lo_open, false);
}

int64_t optional_integer(Napi::Object o, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : require_integer(v, std::string("config.") + key, lo, hi);
}

}  // namespace

// square(images, labels, keys: Uint32Array [n], { epsilon, queries?, pInit?, seed? })
//   -> Promise<NativeAttackResult & { linf: Float32Array }>
Napi::Value ModelWrap::Square(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    auto keys = std::make_shared<std::vector<uint32_t>>(
        copy_typed<uint32_t, napi_uint32_array>(arg(info, 2), "keys", "Uint32Array"));
    Napi::Object o = require_object(arg(info, 3), "config");
    SquareConfig cfg;
    cfg.epsilon = static_cast<float>(require_limit(o.Get("epsilon"), "config.epsilon", kEpsilonLimit));
    cfg.queries = static_cast<int>(optional_integer(o, "queries", cfg.queries, 1, 1000000));
    cfg.p_init = static_cast<float>(optional_range(o, "pInit", cfg.p_init, 0, 1, true));
    cfg.seed = static_cast<uint32_t>(optional_integer(o, "seed", 0, 0, 0xffffffffLL));

    check_images_labels(env, in, net_->input_size(), net_->classes());
    require_length(env, keys->size(), in.labels->size(), "keys");

    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    Network* net = net_.get();
    auto work = [=]() { return run_square(*net, in.images->data(), in.labels->data(), keys->data(), n, cfg, r.get()); };
    auto done = [=](Napi::Env e) -> Napi::Value { return outcomes_to_js(e, *r); };
    return start(env, &use, work, done);
  });
}

// cwL2(images, labels, { steps?, searchSteps?, learningRate?, initialConst?, confidence? })
//   -> Promise<NativeAttackResult & { linf: Float32Array, l2: Float64Array, consts: Float64Array,
//      roundSuccess: Uint8Array }>
Napi::Value ModelWrap::CwL2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    InUse use;
    claim(env, &use);
    const ImagesLabels in = copy_images_labels(info, 0);
    Napi::Object o = require_object(arg(info, 2), "config");
    CwL2Config cfg;
    cfg.steps = static_cast<int>(optional_integer(o, "steps", cfg.steps, 1, 100000));
    cfg.search_steps = static_cast<int>(optional_integer(o, "searchSteps", cfg.search_steps, 1, 100));
    cfg.learning_rate = optional_range(o, "learningRate", cfg.learning_rate, 0, 1e6, true);
    cfg.initial_const = optional_range(o, "initialConst", cfg.initial_const, 0, 1e10, true);
    cfg.confidence = optional_range(o, "confidence", cfg.confidence, 0, 1e6, false);

    check_images_labels(env, in, net_->input_size(), net_->classes());

    const int n = in.count();
    auto r = std::make_shared<AttackResults>();
    auto extras = std::make_shared<CwL2Extras>();
    Network* net = net_.get();
    auto work = [=]() { return run_cw_l2(*net, in.images->data(), in.labels->data(), n, cfg, r.get(), extras.get()); };
    auto done = [=](Napi::Env e) -> Napi::Value {
      Napi::Object out = outcomes_to_js(e, *r);
      out.Set("l2", to_js(e, extras->l2));
      out.Set("consts", to_js(e, extras->consts));
      out.Set("roundSuccess", to_js(e, extras->round_success));
      return out;
    };
    return start(env, &use, work, done);
  });
}

}  // namespace napi
}  // namespace tempered
