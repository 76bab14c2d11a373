// Dataset: images, labels and optional soft targets resident on a backend's device.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "../core/network.h"
#include "in_use.h"

namespace tempered {
namespace napi {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static bool Is(Napi::Value v);
  static DatasetWrap* FromArg(Napi::Value v, const std::string& name);
  // createDataset(backend, images, labels, soft?) -> Promise<Dataset>
  static Napi::Value Create(const Napi::CallbackInfo& info);

  explicit DatasetWrap(const Napi::CallbackInfo& info);

  DeviceDataset* data() { return data_.get(); }
  const std::string& backend_name() const { return backend_name_; }
  // Operations running on it (any number) keep it from being disposed.
  void hold(InUse* use) { use->hold(&users_); }
  void check_usable(Napi::Env env) const;

 private:
  Napi::Value Count(const Napi::CallbackInfo& info);
  Napi::Value Backend(const Napi::CallbackInfo& info);
  Napi::Value HasSoftTargets(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);

  std::unique_ptr<DeviceDataset> data_;
  std::string backend_name_;
  int users_ = 0;
};

}  // namespace napi
}  // namespace tempered
