// The architecture spec from JavaScript ({input: {channels, height, width}, layers: [...]},
// lib/arch.ts) into the C++ ArchSpec, each property read once, then checked by plan_arch.
// Every refusal is a TEMPERED_BAD_ARCH error naming the input or the layer; the plan goes
// back to JavaScript as plain objects.
#pragma once

#include <napi.h>

#include <cmath>
#include <string>

#include "args.h"
#include "errors.h"
#include "tempered/arch.h"

namespace tempered {
namespace napi {

inline const char* bad_arch_code() { return status_code_name(StatusCode::kBadArch); }

// A whole number in [lo, hi] (the spec's sizes), else a BadArch error.
inline int arch_integer(Napi::Object o, const char* key, const std::string& where, int lo, int hi) {
  Napi::Value v = o.Get(key);
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(x >= lo && x <= hi) || x != std::floor(x))
    throw plain_error(o.Env(),
                      where + key + " must be a whole number in " + std::to_string(lo) + ".." + std::to_string(hi),
                      bad_arch_code());
  return static_cast<int>(x);
}

inline Napi::Object arch_object(Napi::Value v, const std::string& what) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
    throw plain_error(v.Env(), what + " must be an object", bad_arch_code());
  return v.As<Napi::Object>();
}

inline ArchSpec parse_arch(Napi::Value v) {
  Napi::Env env = v.Env();
  Napi::Object o = arch_object(v, "the architecture spec");
  ArchSpec spec;
  Napi::Object input = arch_object(o.Get("input"), "input");
  spec.channels = arch_integer(input, "channels", "input: ", 1, 3);
  spec.height = arch_integer(input, "height", "input: ", 1, kArchMaxSide);
  spec.width = arch_integer(input, "width", "input: ", 1, kArchMaxSide);
  Napi::Value layers_v = o.Get("layers");
  if (!layers_v.IsArray()) throw plain_error(env, "layers must be an array", bad_arch_code());
  Napi::Array layers = layers_v.As<Napi::Array>();
  const uint32_t count = layers.Length();
  if (count == 0 || count > static_cast<uint32_t>(kArchMaxLayers))
    throw plain_error(env, "layers must hold 1.." + std::to_string(kArchMaxLayers) + " layers", bad_arch_code());
  for (uint32_t i = 0; i < count; ++i) {
    const std::string where = "layer " + std::to_string(i) + ": ";
    Napi::Object l = arch_object(layers.Get(i), "layer " + std::to_string(i));
    Napi::Value type_v = l.Get("type");
    if (!type_v.IsString()) throw plain_error(env, where + "type must be a string", bad_arch_code());
    const std::string type = type_v.As<Napi::String>().Utf8Value();
    LayerSpec ls;
    const std::string at = "layer " + std::to_string(i) + " (" + type + "): ";
    if (type == "conv") {
      ls.kind = LayerKind::kConv;
      ls.filters = arch_integer(l, "filters", at, 1, kArchMaxFilters);
      Napi::Value k = l.Get("kernel");
      ls.kernel = k.IsUndefined() ? 3 : arch_integer(l, "kernel", at, 1, 15);
      Napi::Value pad = l.Get("padding");
      if (!pad.IsUndefined()) {
        const std::string p = pad.IsString() ? pad.As<Napi::String>().Utf8Value() : std::string();
        if (p != "valid" && p != "same")
          throw plain_error(env, at + "padding must be 'valid' or 'same'", bad_arch_code());
        ls.same = p == "same";
      }
    } else if (type == "relu") {
      ls.kind = LayerKind::kRelu;
    } else if (type == "maxpool") {
      ls.kind = LayerKind::kMaxPool;
    } else if (type == "dropout") {
      ls.kind = LayerKind::kDropout;
      Napi::Value r = l.Get("rate");
      const double rate = r.IsNumber() ? r.As<Napi::Number>().DoubleValue() : std::nan("");
      if (!(rate >= 0.0 && rate < 1.0)) throw plain_error(env, at + "rate must be a number in [0, 1)", bad_arch_code());
      ls.rate = static_cast<float>(rate);
    } else if (type == "flatten") {
      ls.kind = LayerKind::kFlatten;
    } else if (type == "dense") {
      ls.kind = LayerKind::kDense;
      ls.units = arch_integer(l, "units", at, 1, kArchMaxUnits);
    } else {
      std::string shown = type.substr(0, 40);
      throw plain_error(
          env, where + "unknown layer type '" + shown + "' (known: conv, relu, maxpool, dropout, flatten, dense)",
          bad_arch_code());
    }
    spec.layers.push_back(ls);
  }
  return spec;
}

// The argument `v` as a checked plan: the paper's network when undefined.
inline ArchPlan require_arch(Napi::Value v) {
  const ArchSpec spec = v.IsUndefined() ? paper_mnist_spec() : parse_arch(v);
  ArchPlan plan;
  Status st = plan_arch(spec, &plan);
  if (!st.ok()) throw status_error(v.Env(), st);
  return plan;
}

inline Napi::Array shape_to_js(Napi::Env env, const Shape3& s) {
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, s.h);
  a.Set(1u, s.w);
  a.Set(2u, s.c);
  return a;
}

// {inputShape, classes, parameters: [{name, shape, offset, size}], totalParameters,
//  steps: [{kind, name, layer, outputShape}]}
inline Napi::Object plan_to_js(Napi::Env env, const ArchPlan& plan) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("inputShape", shape_to_js(env, plan.input));
  out.Set("classes", plan.classes);
  out.Set("totalParameters", static_cast<double>(plan.total_params));
  Napi::Array params = Napi::Array::New(env, plan.params.size());
  for (size_t i = 0; i < plan.params.size(); ++i) {
    const ParamSpec& p = plan.params[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    Napi::Array shape = Napi::Array::New(env, p.dims.size());
    for (size_t d = 0; d < p.dims.size(); ++d) shape.Set(static_cast<uint32_t>(d), p.dims[d]);
    o.Set("shape", shape);
    o.Set("offset", static_cast<double>(p.offset));
    o.Set("size", static_cast<double>(p.size));
    params.Set(static_cast<uint32_t>(i), o);
  }
  out.Set("parameters", params);
  static const char* kStepKinds[] = {"pad", "conv", "relu", "maxpool", "dropout", "flatten", "dense"};
  Napi::Array steps = Napi::Array::New(env, plan.steps.size());
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const Step& s = plan.steps[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", kStepKinds[static_cast<int>(s.kind)]);
    o.Set("name", s.name);
    o.Set("layer", s.layer);
    o.Set("relu", s.relu);
    o.Set("outputShape", shape_to_js(env, s.out));
    steps.Set(static_cast<uint32_t>(i), o);
  }
  out.Set("steps", steps);
  return out;
}

}  // namespace napi
}  // namespace tempered
