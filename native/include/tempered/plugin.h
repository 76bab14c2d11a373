// The contract between the addon and a backend plugin (the CUDA backend is built as a
// separate shared library, libtempered_cuda.so, loaded at run time so that the addon
// loads on machines without a GPU driver).
#pragma once

#include <cstddef>

#include "tempered/backend.h"

// Bump when Backend's virtual methods change: a stale plugin is then refused, not called.
#define TEMPERED_PLUGIN_ABI_VERSION 3

extern "C" {
// Returns the plugin's ABI version.
typedef int (*tempered_plugin_abi_fn)();
// Creates the backend, or returns null and writes the reason (NUL-terminated) to `why`.
typedef tempered::Backend* (*tempered_plugin_create_fn)(char* why, size_t why_size);
}

#define TEMPERED_PLUGIN_ABI_SYMBOL "tempered_plugin_abi_version"
#define TEMPERED_PLUGIN_CREATE_SYMBOL "tempered_plugin_create_backend"
