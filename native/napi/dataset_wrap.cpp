#include "dataset_wrap.h"

#include <cstring>

#include "../core/backends.h"
#include "addon_data.h"
#include "args.h"
#include "task.h"

namespace tempered {
namespace napi {

namespace {
// Carries a finished upload into the constructor.
struct PendingDataset {
  std::unique_ptr<DeviceDataset> data;
  std::string backend;
};
}  // namespace

Napi::Function DatasetWrap::Define(Napi::Env env) {
  return DefineClass(env, "Dataset",
                     {
                         InstanceMethod<&DatasetWrap::Count>("count"),
                         InstanceMethod<&DatasetWrap::Backend>("backend"),
                         InstanceMethod<&DatasetWrap::HasSoftTargets>("hasSoftTargets"),
                         InstanceMethod<&DatasetWrap::Dispose>("dispose"),
                         InstanceMethod<&DatasetWrap::IsDisposed>("isDisposed"),
                     });
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw type_error(info.Env(), "Dataset cannot be constructed directly: use createDataset()");
  auto* pending = info[0].As<Napi::External<PendingDataset>>().Data();
  data_ = std::move(pending->data);
  backend_name_ = pending->backend;
}

bool DatasetWrap::Is(Napi::Value v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(addon_data(v.Env()).dataset_constructor.Value());
}

DatasetWrap* DatasetWrap::FromArg(Napi::Value v, const std::string& name) {
  if (!Is(v)) throw type_error(v.Env(), name + " must be a Dataset (from createDataset)");
  DatasetWrap* d = nullptr;
  try {
    d = Napi::ObjectWrap<DatasetWrap>::Unwrap(v.As<Napi::Object>());
  } catch (const Napi::Error&) {
    // An object that inherits Dataset's prototype but is not one.
  }
  if (d == nullptr) throw type_error(v.Env(), name + " must be a Dataset (from createDataset)");
  d->check_usable(v.Env());
  return d;
}

void DatasetWrap::check_usable(Napi::Env env) const {
  if (!data_) throw plain_error(env, "the dataset has been disposed", kDisposed);
}

Napi::Value DatasetWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded_promise(env, [&]() -> Napi::Value {
    // Copied first, then checked: the arrays may live in a SharedArrayBuffer.
    std::string backend_name = require_backend_name(arg(info, 0), "backend");
    auto host_images = std::make_shared<std::vector<float>>(copy_f32(arg(info, 1), "images"));
    auto host_labels = std::make_shared<std::vector<int32_t>>(copy_i32(arg(info, 2), "labels"));
    Napi::Value soft_v = arg(info, 3);
    const bool has_soft = !soft_v.IsUndefined() && !soft_v.IsNull();
    auto host_soft =
        std::make_shared<std::vector<float>>(has_soft ? copy_f32(soft_v, "softTargets") : std::vector<float>());

    // The image size and class count of the network it is for (default: the paper's).
    Napi::Value size_v = arg(info, 4), classes_v = arg(info, 5);
    const int input_size =
        size_v.IsUndefined()
            ? 784
            : static_cast<int>(require_integer(size_v, "inputSize", 1, 3 * kArchMaxSide * kArchMaxSide));
    const int kClasses =
        classes_v.IsUndefined()
            ? 10
            : static_cast<int>(require_integer(classes_v, "classes", kArchMinClasses, kArchMaxClasses));
    const size_t count = require_multiple(env, host_images->size(), input_size, "images");
    if (count > 0x7fffffff) throw range_error(env, "images: too many rows", kInvalidLength);
    require_length(env, host_labels->size(), count, "labels");
    require_classes(env, *host_labels, kClasses, "labels");
    if (has_soft) {
      require_length(env, host_soft->size(), count * kClasses, "softTargets");
      require_all_finite(env, *host_soft, "softTargets");
      for (size_t i = 0; i < host_soft->size(); ++i)
        if ((*host_soft)[i] < 0.0f || (*host_soft)[i] > 1.0f)
          throw range_error(env, "softTargets[" + std::to_string(i) + "] = " + std::to_string((*host_soft)[i]) +
                                     " is not a probability in [0, 1]");
    }
    require_all_finite(env, *host_images, "images");

    tempered::Backend* backend = nullptr;
    Status st = get_backend(backend_name, &backend);
    if (!st.ok()) throw status_error(env, st);

    auto pending = std::make_shared<PendingDataset>();
    pending->backend = backend_name;
    pending->data = std::make_unique<DeviceDataset>();

    auto work = [=]() -> Status {
      DeviceDataset& d = *pending->data;
      d.backend = backend;
      d.count = static_cast<int>(count);
      d.input_size = input_size;
      d.classes = kClasses;
      TEMPERED_TRY(d.images.allocate(backend, host_images->size()));
      TEMPERED_TRY(backend->upload(d.images.get(), host_images->data(), d.images.bytes()));
      TEMPERED_TRY(d.labels.allocate(backend, host_labels->size()));
      TEMPERED_TRY(backend->upload(d.labels.get(), host_labels->data(), d.labels.bytes()));
      if (!host_soft->empty()) {
        TEMPERED_TRY(d.soft.allocate(backend, host_soft->size()));
        TEMPERED_TRY(backend->upload(d.soft.get(), host_soft->data(), d.soft.bytes()));
      }
      return backend->synchronize();
    };
    auto done = [=](Napi::Env e) -> Napi::Value {
      return addon_data(e).dataset_constructor.New({Napi::External<PendingDataset>::New(e, pending.get())});
    };
    return Task::Start(env, work, done, nullptr, {});
  });
}

Napi::Value DatasetWrap::Count(const Napi::CallbackInfo& info) {
  check_usable(info.Env());
  return Napi::Number::New(info.Env(), data_->count);
}

Napi::Value DatasetWrap::Backend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend_name_);
}

Napi::Value DatasetWrap::HasSoftTargets(const Napi::CallbackInfo& info) {
  check_usable(info.Env());
  return Napi::Boolean::New(info.Env(), data_->has_soft());
}

Napi::Value DatasetWrap::Dispose(const Napi::CallbackInfo& info) {
  if (users_ > 0) throw plain_error(info.Env(), "the dataset is in use by a running operation", kBusy);
  data_.reset();
  return info.Env().Undefined();
}

Napi::Value DatasetWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !data_); }

}  // namespace napi
}  // namespace tempered
