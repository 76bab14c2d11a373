// The plugin's two exported entry points (tempered/plugin.h); every other symbol of
// libtempered_cuda.so is hidden (exports.map).
#include <cstring>
#include <exception>
#include <string>

#include "cuda_backend.h"
#include "tempered/plugin.h"

#define TEMPERED_PLUGIN_EXPORT __attribute__((visibility("default")))

namespace {

void write_reason(char* why, size_t why_size, const std::string& reason) {
  if (why == nullptr || why_size == 0) return;
  const size_t n = reason.size() < why_size - 1 ? reason.size() : why_size - 1;
  std::memcpy(why, reason.data(), n);
  why[n] = '\0';
}

}  // namespace

extern "C" TEMPERED_PLUGIN_EXPORT int tempered_plugin_abi_version() { return TEMPERED_PLUGIN_ABI_VERSION; }

extern "C" TEMPERED_PLUGIN_EXPORT tempered::Backend* tempered_plugin_create_backend(char* why, size_t why_size) {
  try {
    std::string reason;
    tempered::Backend* b = tempered::cuda::CudaBackend::create(&reason);
    if (b == nullptr) write_reason(why, why_size, reason.empty() ? "the CUDA backend could not start" : reason);
    return b;
  } catch (const std::exception& e) {
    write_reason(why, why_size, std::string("the CUDA backend could not start: ") + e.what());
  } catch (...) {
    write_reason(why, why_size, "the CUDA backend could not start (unknown exception)");
  }
  return nullptr;
}
