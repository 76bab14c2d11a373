// Per-environment state: the constructors of the native classes, so C++ can create their
// instances (e.g. a Dataset when its upload finishes).
#pragma once

#include <napi.h>

namespace tempered {
namespace napi {

struct AddonData {
  Napi::FunctionReference dataset_constructor;
  Napi::FunctionReference model_constructor;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace napi
}  // namespace tempered
