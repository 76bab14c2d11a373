#include "backends.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "../cpu/cpu_backend.h"
#include "../cuda/library_search.h"
#include "tempered/plugin.h"

#ifndef TEMPERED_CUDA_MAJOR
#define TEMPERED_CUDA_MAJOR 13  // the toolkit the plugin was built with (CMakeLists.txt)
#endif

namespace tempered {

namespace {

std::mutex g_mutex;
std::vector<std::string> g_plugin_dirs;

struct CudaState {
  bool tried = false;
  Backend* backend = nullptr;
  std::string reason;
};
CudaState g_cuda;

cpu::CpuBackend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

// Loads the CUDA plugin once; remembers the reason when it cannot.
void try_load_cuda() {
  if (g_cuda.tried) return;
  g_cuda.tried = true;
  const char* disabled = std::getenv("TEMPERED_DISABLE_CUDA");
  if (disabled != nullptr && *disabled != '\0' && std::string(disabled) != "0") {
    g_cuda.reason = "disabled by TEMPERED_DISABLE_CUDA";
    return;
  }
  std::string path = "libtempered_cuda.so";
  for (const std::string& dir : g_plugin_dirs) {
    const std::string candidate = (dir.empty() ? std::string() : dir + "/") + "libtempered_cuda.so";
    if (access(candidate.c_str(), F_OK) == 0) {
      path = candidate;
      break;
    }
  }
  if (path.find('/') == std::string::npos && !g_plugin_dirs.empty())
    path = g_plugin_dirs.front() + "/libtempered_cuda.so";  // none there: the error names the first folder
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    std::string detail = err ? err : "unknown error";
    if (detail.find("No such file") != std::string::npos ||
        detail.find("cannot open shared object") != std::string::npos)
      g_cuda.reason =
          "the CUDA plugin was not built (no nvcc when the addon was built, or TEMPERED_CUDA=OFF; npm run build:cuda "
          "builds it): " +
          detail;
    else
      g_cuda.reason = "the CUDA plugin failed to load: " + detail;
    return;
  }
  auto abi = reinterpret_cast<tempered_plugin_abi_fn>(dlsym(handle, TEMPERED_PLUGIN_ABI_SYMBOL));
  auto create = reinterpret_cast<tempered_plugin_create_fn>(dlsym(handle, TEMPERED_PLUGIN_CREATE_SYMBOL));
  if (abi == nullptr || create == nullptr) {
    g_cuda.reason = "the CUDA plugin at " + path + " lacks the plugin entry points";
    return;
  }
  if (abi() != TEMPERED_PLUGIN_ABI_VERSION) {
    g_cuda.reason =
        "the CUDA plugin at " + path + " was built for another version of the addon; rebuild with npm run build";
    return;
  }
  char why[512] = {0};
  Backend* b = create(why, sizeof(why));
  if (b == nullptr) {
    g_cuda.reason = why[0] ? why : "the CUDA plugin could not start";
    return;
  }
  g_cuda.backend = b;
}

}  // namespace

void set_plugin_directories(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_plugin_dirs = dirs;
}

std::vector<BackendInfo> list_backends() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<BackendInfo> out;
  BackendInfo cpu;
  cpu.name = "cpu";
  cpu.available = true;
  cpu.device = cpu_backend().device_name();
  out.push_back(cpu);
  try_load_cuda();
  BackendInfo cuda;
  cuda.name = "cuda";
  cuda.available = g_cuda.backend != nullptr;
  cuda.reason = g_cuda.reason;
  if (cuda.available) cuda.device = g_cuda.backend->device_name();
  cuda.libraries = cuda::describe_cuda_libraries(TEMPERED_CUDA_MAJOR);
  out.push_back(cuda);
  return out;
}

Status get_backend(const std::string& name, Backend** out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  *out = nullptr;
  if (name == "cpu") {
    *out = &cpu_backend();
    return Status::Ok();
  }
  if (name == "cuda") {
    try_load_cuda();
    if (g_cuda.backend == nullptr) return Status::Unavailable("CUDA backend unavailable: " + g_cuda.reason);
    *out = g_cuda.backend;
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown backend '" + name + "' (expected 'cpu' or 'cuda')");
}

}  // namespace tempered
