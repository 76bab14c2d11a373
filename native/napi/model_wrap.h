// Model: the network's weights and optimiser state on a backend's device. JS holds this
// handle; every heavy method returns a Promise and runs off the main thread. One
// operation at a time per model: a second call while one runs (including one made from a
// getter of the first call's options) is refused with TEMPERED_BUSY rather than queued,
// so results never depend on call order; dispose() is refused while one runs.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "../core/network.h"
#include "dataset_wrap.h"
#include "in_use.h"
#include "task.h"

namespace tempered {
namespace napi {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // createModel(backend, seed, arch?) -> Model (weights initialised Glorot-uniform from seed;
  // arch: the architecture spec, the paper's network when undefined)
  static Napi::Value Create(const Napi::CallbackInfo& info);
  // apgdSchedule(steps, losses): APGD's step-size decisions on given losses (attack_apgd_wrap.cpp)
  static Napi::Value ApgdScheduleOf(const Napi::CallbackInfo& info);

  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Backend(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Plan(const Napi::CallbackInfo& info);
  Napi::Value GetParameters(const Napi::CallbackInfo& info);
  Napi::Value SetParameters(const Napi::CallbackInfo& info);
  Napi::Value GetVelocity(const Napi::CallbackInfo& info);
  Napi::Value SetVelocity(const Napi::CallbackInfo& info);
  Napi::Value TrainSteps(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value Trace(const Napi::CallbackInfo& info);
  Napi::Value InputGradient(const Napi::CallbackInfo& info);
  Napi::Value Sweep(const Napi::CallbackInfo& info);
  Napi::Value AttackLosses(const Napi::CallbackInfo& info);
  Napi::Value Attack(const Napi::CallbackInfo& info);
  Napi::Value Jsma(const Napi::CallbackInfo& info);              // attack_literature_wrap.cpp
  Napi::Value Pgd(const Napi::CallbackInfo& info);               // attack_literature_wrap.cpp
  Napi::Value Apgd(const Napi::CallbackInfo& info);              // attack_apgd_wrap.cpp
  Napi::Value ApgdLossGradient(const Napi::CallbackInfo& info);  // attack_apgd_wrap.cpp
  Napi::Value Square(const Napi::CallbackInfo& info);            // attack_square_cw_wrap.cpp
  Napi::Value CwL2(const Napi::CallbackInfo& info);              // attack_square_cw_wrap.cpp
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  Napi::Value GetFlat(Napi::Env env, Status (Network::*get)(float*));
  Napi::Value SetFlat(const Napi::CallbackInfo& info, const char* name, Status (Network::*set)(const float*));

  // Throws unless the model can start an operation now.
  void check_idle(Napi::Env env) const;
  // Holds the model for one operation (throws when disposed or busy).
  void claim(Napi::Env env, InUse* use);
  // The data set argument, held for the operation; on the model's backend.
  DatasetWrap* claim_dataset(Napi::Value v, InUse* use);
  // Queues the work; the hold ends when it does. The model itself is always pinned.
  Napi::Promise start(Napi::Env env, InUse* use, Task::Work work, Task::Done done, std::vector<Napi::Object> pins = {});

  std::unique_ptr<Network> net_;
  std::string backend_name_;
  int in_flight_ = 0;  // operations holding the model (at most one: a second is refused)
};

}  // namespace napi
}  // namespace tempered
