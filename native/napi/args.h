// Argument checks, all on the main thread before any work is queued: each names the
// argument it rejects.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

namespace tempered {
namespace napi {

inline Napi::Value arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

inline Napi::Object require_object(Napi::Value v, const std::string& name) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) throw type_error(v.Env(), name + " must be an object");
  return v.As<Napi::Object>();
}

inline double require_number(Napi::Value v, const std::string& name) {
  if (!v.IsNumber()) throw type_error(v.Env(), name + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline double require_finite(Napi::Value v, const std::string& name) {
  double x = require_number(v, name);
  if (!std::isfinite(x))
    throw range_error(v.Env(), name + " must be finite (got " + std::to_string(x) + ")", kNotFinite);
  return x;
}

// A finite number in [lo, hi] (open ends when the flags say so).
inline double require_range(Napi::Value v, const std::string& name, double lo, double hi, bool lo_open = false,
                            bool hi_open = false) {
  double x = require_finite(v, name);
  bool ok = (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  if (!ok) {
    throw range_error(v.Env(), name + " must be in " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                                   std::to_string(hi) + (hi_open ? ")" : "]") + " (got " + std::to_string(x) + ")");
  }
  return x;
}

inline int64_t require_integer(Napi::Value v, const std::string& name, int64_t lo, int64_t hi) {
  double x = require_finite(v, name);
  if (x != std::floor(x)) throw range_error(v.Env(), name + " must be an integer (got " + std::to_string(x) + ")");
  if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
    throw range_error(v.Env(), name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                   " (got " + std::to_string(static_cast<int64_t>(x)) + ")");
  return static_cast<int64_t>(x);
}

inline bool require_bool(Napi::Value v, const std::string& name) {
  if (!v.IsBoolean()) throw type_error(v.Env(), name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline std::string require_string(Napi::Value v, const std::string& name) {
  if (!v.IsString()) throw type_error(v.Env(), name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// 'cpu' or 'cuda'.
inline std::string require_backend_name(Napi::Value v, const std::string& name) {
  std::string s = require_string(v, name);
  if (s != "cpu" && s != "cuda") throw range_error(v.Env(), name + " must be 'cpu' or 'cuda' (got '" + s + "')");
  return s;
}

template <typename T, napi_typedarray_type kType>
inline Napi::TypedArrayOf<T> require_typed(Napi::Value v, const std::string& name, const char* type_name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    throw type_error(v.Env(), name + " must be a " + type_name);
  return v.As<Napi::TypedArrayOf<T>>();
}

// A copy of a typed array's elements, taken at once: the array may be rewritten, detached or
// shrunk by user code that runs later in the call (getters), or by another thread when it
// lives in a SharedArrayBuffer, so every check is made on the copy.
template <typename T, napi_typedarray_type kType>
inline std::vector<T> copy_typed(Napi::Value v, const std::string& name, const char* type_name) {
  Napi::TypedArrayOf<T> a = require_typed<T, kType>(v, name, type_name);
  const T* data = a.Data();
  const size_t n = a.ElementLength();
  return n == 0 || data == nullptr ? std::vector<T>() : std::vector<T>(data, data + n);
}

inline std::vector<float> copy_f32(Napi::Value v, const std::string& name) {
  return copy_typed<float, napi_float32_array>(v, name, "Float32Array");
}
inline std::vector<int32_t> copy_i32(Napi::Value v, const std::string& name) {
  return copy_typed<int32_t, napi_int32_array>(v, name, "Int32Array");
}
inline std::vector<uint8_t> copy_u8(Napi::Value v, const std::string& name) {
  return copy_typed<uint8_t, napi_uint8_array>(v, name, "Uint8Array");
}

// Every element finite, else a RangeError naming the first that is not.
inline void require_all_finite(Napi::Env env, const std::vector<float>& values, const std::string& name) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw range_error(env, name + "[" + std::to_string(i) + "] is not finite", kNotFinite);
}

// Every label a class in 0..classes-1.
inline void require_classes(Napi::Env env, const std::vector<int32_t>& labels, int classes, const std::string& name) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw range_error(env, name + "[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                                 " is not a class in 0.." + std::to_string(classes - 1));
}

inline Napi::Float32Array require_f32(Napi::Value v, const std::string& name) {
  return require_typed<float, napi_float32_array>(v, name, "Float32Array");
}
inline Napi::Int32Array require_i32(Napi::Value v, const std::string& name) {
  return require_typed<int32_t, napi_int32_array>(v, name, "Int32Array");
}

inline void require_length(Napi::Env env, size_t actual, size_t expected, const std::string& name) {
  if (actual != expected)
    throw range_error(env,
                      name + " must have length " + std::to_string(expected) + " (got " + std::to_string(actual) + ")",
                      kInvalidLength);
}

// A non-empty array whose length is a multiple of `unit`; returns length / unit.
inline size_t require_multiple(Napi::Env env, size_t length, size_t unit, const std::string& name) {
  if (length == 0 || length % unit != 0)
    throw range_error(env,
                      name + " must hold a positive whole number of " + std::to_string(unit) +
                          "-element rows (got length " + std::to_string(length) + ")",
                      kInvalidLength);
  return length / unit;
}

}  // namespace napi
}  // namespace tempered
