// Arguments shared by the model's entry points: the loss specification, images with their
// labels (copied first, checked once every argument has been read), and typed arrays
// handed back to JavaScript.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/attack.h"
#include "args.h"
#include "limits.h"

namespace tempered {
namespace napi {

// {loss: 'xent' | 'margin', precision: 'float32' | 'float64', temperature: number}, all optional.
inline LossSpec parse_loss_spec(Napi::Value v, const std::string& name) {
  LossSpec spec;
  if (v.IsUndefined()) return spec;
  Napi::Object o = require_object(v, name);
  Napi::Value loss = o.Get("loss");
  if (!loss.IsUndefined()) {
    std::string l = require_string(loss, name + ".loss");
    if (l == "xent")
      spec.loss = AttackLoss::kXent;
    else if (l == "margin")
      spec.loss = AttackLoss::kMargin;
    else
      throw range_error(v.Env(), name + ".loss must be 'xent' or 'margin' (got '" + l + "')");
  }
  Napi::Value precision = o.Get("precision");
  if (!precision.IsUndefined()) {
    std::string p = require_string(precision, name + ".precision");
    if (p == "float32")
      spec.precision = LossPrecision::kFloat32;
    else if (p == "float64")
      spec.precision = LossPrecision::kFloat64;
    else
      throw range_error(v.Env(), name + ".precision must be 'float32' or 'float64' (got '" + p + "')");
  }
  Napi::Value temperature = o.Get("temperature");
  if (!temperature.IsUndefined())
    spec.temperature = static_cast<float>(require_limit(temperature, name + ".temperature", kLossTemperatureLimit));
  return spec;
}

// Images [n * input_size] and labels [n], copied; checked by check_images_labels once every
// argument has been read.
struct ImagesLabels {
  std::shared_ptr<std::vector<float>> images;
  std::shared_ptr<std::vector<int32_t>> labels;
  int count() const { return static_cast<int>(labels->size()); }
};

inline ImagesLabels copy_images_labels(const Napi::CallbackInfo& info, size_t at) {
  ImagesLabels r;
  r.images = std::make_shared<std::vector<float>>(copy_f32(arg(info, at), "images"));
  r.labels = std::make_shared<std::vector<int32_t>>(copy_i32(arg(info, at + 1), "labels"));
  return r;
}

inline void check_images_labels(Napi::Env env, const ImagesLabels& r, int input_size, int classes) {
  const size_t n = require_multiple(env, r.images->size(), input_size, "images");
  if (n > 0x7fffffff) throw range_error(env, "images: too many rows", kInvalidLength);
  require_length(env, r.labels->size(), n, "labels");
  require_all_finite(env, *r.images, "images");
  require_classes(env, *r.labels, classes, "labels");
}

template <typename T>
inline Napi::TypedArrayOf<T> to_js(Napi::Env env, const std::vector<T>& v) {
  auto a = Napi::TypedArrayOf<T>::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), sizeof(T) * v.size());
  return a;
}

}  // namespace napi
}  // namespace tempered
