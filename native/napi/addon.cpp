// The module's entry point: the functions and classes declared in binding.d.ts.
#include <dlfcn.h>
#include <napi.h>

#include <string>
#include <vector>

#include "../core/backends.h"
#include "../cpu/cpu_backend.h"
#include "addon_data.h"
#include "arch_args.h"
#include "args.h"
#include "benchmarks.h"
#include "dataset_wrap.h"
#include "limits.h"
#include "model_wrap.h"

#ifndef TEMPERED_VERSION
#define TEMPERED_VERSION "0.0.0"
#endif

namespace tempered {
namespace napi {
namespace {

cpu::CpuBackend& cpu() {
  Backend* b = nullptr;
  get_backend("cpu", &b);
  return *static_cast<cpu::CpuBackend*>(b);
}

Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TEMPERED_VERSION); }

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", TEMPERED_VERSION);
#ifdef TEMPERED_BUILT_WITH_CUDA
  o.Set("cudaPlugin", true);
#else
  o.Set("cudaPlugin", false);
#endif
  o.Set("compiler", __VERSION__);
  return o;
}

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto list = list_backends();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", list[i].name);
      o.Set("available", list[i].available);
      if (list[i].available) {
        o.Set("device", list[i].device);
      } else {
        o.Set("reason", list[i].reason);
      }
      if (!list[i].libraries.empty()) o.Set("libraries", list[i].libraries);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = static_cast<int>(require_integer(arg(info, 0), "threads", 1, 1024));
  cpu::CpuBackend::set_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::CpuBackend::threads());
}

Napi::Value HardwareThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::ThreadPool::hardware_threads());
}

Napi::Value CpuIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cpu().kernels().isa); }

Napi::Value SupportedCpuIsas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const char* isa : {"avx512", "avx2", "generic"})
    if (cpu::kernels_for(isa) != nullptr) out.Set(i++, isa);
  return out;
}

Napi::Value SetCpuIsa(const Napi::CallbackInfo& info) {
  std::string isa = require_string(arg(info, 0), "isa");
  if (isa != "avx512" && isa != "avx2" && isa != "generic")
    throw range_error(info.Env(), "isa must be 'avx512', 'avx2' or 'generic' (got '" + isa + "')");
  if (!cpu().set_isa(isa.c_str()))
    throw range_error(info.Env(), "this processor does not support the '" + isa + "' kernels");
  return info.Env().Undefined();
}

// parameterLayout(arch?) -> the parameter tensors of the network (the paper's when undefined).
Napi::Value ParameterLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return plan_to_js(env, require_arch(arg(info, 0))).Get("parameters"); });
}

// planArch(arch) -> the checked plan of a spec (TEMPERED_BAD_ARCH when it is not one).
Napi::Value PlanArch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return plan_to_js(env, require_arch(arg(info, 0))); });
}

// The folder this addon was loaded from: the CUDA plugin is looked for there.
std::string addon_directory() {
  Dl_info dl;
  if (dladdr(reinterpret_cast<void*>(&addon_directory), &dl) != 0 && dl.dli_fname != nullptr) {
    std::string path = dl.dli_fname;
    auto slash = path.rfind('/');
    if (slash != std::string::npos) return path.substr(0, slash);
  }
  return ".";
}

// Where the CUDA plugin may be: beside the addon, and for a prebuilt addon
// (<package>/prebuilds/<platform>/tempered.node) the package's build/Release, where
// `npm install` with nvcc or `npm run build:cuda` builds the plugin alone.
std::vector<std::string> plugin_directories(const std::string& addon_dir) {
  std::vector<std::string> dirs{addon_dir};
  auto slash = addon_dir.rfind('/');
  if (slash != std::string::npos) {
    const std::string parent = addon_dir.substr(0, slash);
    auto up = parent.rfind('/');
    const std::string parent_name = up == std::string::npos ? parent : parent.substr(up + 1);
    if (parent_name == "prebuilds")
      dirs.push_back((up == std::string::npos ? "." : parent.substr(0, up)) + "/build/Release");
  }
  return dirs;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  set_plugin_directories(plugin_directories(addon_directory()));
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);

  Napi::Function dataset = DatasetWrap::Define(env);
  Napi::Function model = ModelWrap::Define(env);
  data->dataset_constructor = Napi::Persistent(dataset);
  data->model_constructor = Napi::Persistent(model);

  exports.Set("version", Napi::Function::New<Version>(env, "version"));
  exports.Set("buildInfo", Napi::Function::New<BuildInfo>(env, "buildInfo"));
  exports.Set("backends", Napi::Function::New<Backends>(env, "backends"));
  exports.Set("setThreads", Napi::Function::New<SetThreads>(env, "setThreads"));
  exports.Set("getThreads", Napi::Function::New<GetThreads>(env, "getThreads"));
  exports.Set("hardwareThreads", Napi::Function::New<HardwareThreads>(env, "hardwareThreads"));
  exports.Set("cpuIsa", Napi::Function::New<CpuIsa>(env, "cpuIsa"));
  exports.Set("supportedCpuIsas", Napi::Function::New<SupportedCpuIsas>(env, "supportedCpuIsas"));
  exports.Set("setCpuIsa", Napi::Function::New<SetCpuIsa>(env, "setCpuIsa"));
  exports.Set("limits", Napi::Function::New<LimitsObject>(env, "limits"));
  exports.Set("parameterLayout", Napi::Function::New<ParameterLayout>(env, "parameterLayout"));
  exports.Set("planArch", Napi::Function::New<PlanArch>(env, "planArch"));
  exports.Set("fmaPeak", Napi::Function::New<FmaPeak>(env, "fmaPeak"));
  exports.Set("profileTraining", Napi::Function::New<ProfileTraining>(env, "profileTraining"));
  exports.Set("profileForward", Napi::Function::New<ProfileForward>(env, "profileForward"));
  exports.Set("createModel", Napi::Function::New<ModelWrap::Create>(env, "createModel"));
  exports.Set("apgdSchedule", Napi::Function::New<ModelWrap::ApgdScheduleOf>(env, "apgdSchedule"));
  exports.Set("createDataset", Napi::Function::New<DatasetWrap::Create>(env, "createDataset"));
  exports.Set("Model", model);
  exports.Set("Dataset", dataset);
  return exports;
}

}  // namespace napi
}  // namespace tempered

// NODE_API_MODULE pastes its second argument into a name, so it must be unqualified.
static Napi::Object InitTempered(Napi::Env env, Napi::Object exports) { return tempered::napi::Init(env, exports); }
NODE_API_MODULE(tempered, InitTempered)
