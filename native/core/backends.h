// Which backends exist in this process: the CPU backend always; the CUDA backend when its
// plugin was built, loads, and finds a device. Lookups never fail hard: an unavailable
// backend comes with the reason.
#pragma once

#include <string>
#include <vector>

#include "tempered/backend.h"

namespace tempered {

struct BackendInfo {
  std::string name;
  bool available = false;
  std::string reason;  // why it is unavailable
  std::string device;  // what it runs on, when available
  // cuda only: which cuDNN / cuBLAS files the plugin loads (or would load), or where it
  // looked and found none (native/cuda/library_search.h).
  std::string libraries;
};

std::vector<BackendInfo> list_backends();

// "cpu" or "cuda". Backends are process-wide singletons that live until exit.
Status get_backend(const std::string& name, Backend** out);

// Where the addon looks for libtempered_cuda.so, in order (the addon's own folder; for a
// prebuilt addon in <package>/prebuilds/<platform>/ also <package>/build/Release, where a
// source build of the plugin alone writes it). The first folder holding one is used.
void set_plugin_directories(const std::vector<std::string>& dirs);

}  // namespace tempered
