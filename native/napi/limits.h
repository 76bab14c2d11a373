// The ranges of the numeric options, in one table: the entry points check against it and
// expose it as `limits()`, which the TypeScript layer checks against too, so both refuse the
// same values with the same message.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "errors.h"

namespace tempered {
namespace napi {

struct Limit {
  const char* key;  // the name in limits() and in the option objects
  double min;
  double max;
  bool min_open;
  bool max_open;
};

constexpr Limit kTemperatureLimit{"temperature", 0, 1e6, true, false};
constexpr Limit kLearningRateLimit{"learningRate", 0, 1e6, true, false};
constexpr Limit kMomentumLimit{"momentum", 0, 1, false, true};
constexpr Limit kLossScaleLimit{"lossScale", 0, 1e9, true, false};
constexpr Limit kL2Limit{"l2", 0, 1e6, false, false};
constexpr Limit kDropoutRateLimit{"dropoutRate", 0, 1, false, true};
// An attack's or a gradient's loss temperature: wider, it only rescales the logits.
constexpr Limit kLossTemperatureLimit{"lossTemperature", 0, 1e30, true, false};

// PGD and FGSM: the radius of the L-infinity ball and the size of one sign step (pixels live in [0, 1]).
constexpr Limit kEpsilonLimit{"epsilon", 0, 1, true, false};
constexpr Limit kStepSizeLimit{"stepSize", 0, 1, true, false};

constexpr Limit kLimits[] = {kTemperatureLimit, kLearningRateLimit,    kMomentumLimit, kLossScaleLimit, kL2Limit,
                             kDropoutRateLimit, kLossTemperatureLimit, kEpsilonLimit,  kStepSizeLimit};

// A number as JavaScript's String(x) writes it (shortest round trip), so that messages from
// C++ and from TypeScript read the same.
inline std::string js_number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  char buf[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::snprintf(buf, sizeof buf, "%.*e", digits - 1, x);
  std::string s = buf;
  const size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  if (exponent >= -6 && exponent < 21) {
    std::snprintf(buf, sizeof buf, "%.*f", digits - 1 - exponent > 0 ? digits - 1 - exponent : 0, x);
    return buf;
  }
  return s.substr(0, e) + (exponent < 0 ? "e-" : "e+") + std::to_string(std::abs(exponent));
}

inline std::string describe(const Limit& l) {
  return std::string(l.min_open ? "(" : "[") + js_number(l.min) + ", " + js_number(l.max) + (l.max_open ? ")" : "]");
}

// A finite number within the limit, else a coded RangeError "<name> must be in (a, b] (got x)".
inline double require_limit(Napi::Value v, const std::string& name, const Limit& l) {
  if (!v.IsNumber()) throw type_error(v.Env(), name + " must be a number");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x)) throw range_error(v.Env(), name + " must be finite (got " + js_number(x) + ")", kNotFinite);
  const bool ok = (l.min_open ? x > l.min : x >= l.min) && (l.max_open ? x < l.max : x <= l.max);
  if (!ok) throw range_error(v.Env(), name + " must be in " + describe(l) + " (got " + js_number(x) + ")");
  return x;
}

// limits() -> { temperature: { min, max, minExclusive, maxExclusive }, ... }
inline Napi::Value LimitsObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const Limit& l : kLimits) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("min", l.min);
    o.Set("max", l.max);
    o.Set("minExclusive", l.min_open);
    o.Set("maxExclusive", l.max_open);
    out.Set(l.key, o);
  }
  return out;
}

}  // namespace napi
}  // namespace tempered
