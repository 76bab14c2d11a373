// Where cuDNN and cuBLAS are looked for at run time: plain C++, compiled into the CUDA plugin
// (which loads what it finds, cuda_libraries.cpp) and into the addon (which reports, in
// backends(), which files the plugin would load or where it looked), so the two agree.
//
// For each accepted file name in order (libcudnn.so.9; libcublas.so.<CUDA major>, then the
// previous major), the first folder holding it, among, in order:
//   1. the nvidia/<package>/lib folders of the Python site-packages in
//      TEMPERED_PYTHON_SITE_PACKAGES (colon-separated), then of the interpreter the build was
//      configured with (TEMPERED_PYTHON), where pip's nvidia-cudnn-cu* / nvidia-cublas wheels
//      (e.g. beside PyTorch) put them, then every other nvidia/*/lib there;
//   2. the folders of LD_LIBRARY_PATH;
//   3. CUDNN_ROOT / CUBLAS_ROOT, as <root>/lib, <root>/lib64 and <root>;
//   4. the CUDA toolkit: CUDA_HOME, CUDA_PATH, /usr/local/cuda (lib64, lib, targets/*/lib);
//   5. the system's library folders (/usr/lib/x86_64-linux-gnu, /usr/lib64, /usr/lib).
#pragma once

#include <string>
#include <vector>

namespace tempered {
namespace cuda {

struct LibraryLookup {
  std::string file;                   // the file found, or empty
  std::vector<std::string> searched;  // every folder looked in, in order
};

// `names` in order of preference; `root_env` e.g. "CUDNN_ROOT"; `pip_package` e.g. "cudnn".
LibraryLookup find_cuda_library(const std::vector<std::string>& names, const char* root_env, const char* pip_package);

// The accepted file names: {"libcudnn.so.9"} and {"libcublas.so.<major>", "libcublas.so.<major-1>"}.
std::vector<std::string> cudnn_names();
std::vector<std::string> cublas_names(int cuda_major);

// "cuDNN: <file>" or "cuDNN: <names> not found (searched a, b, ...)".
std::string describe_lookup(const char* label, const LibraryLookup& found, const std::vector<std::string>& names);

// One line for reports: "cuDNN: <file>" or "cuDNN: not found (searched a, b, ...)", the same
// for cuBLAS, separated by "; ".
std::string describe_cuda_libraries(int cuda_major);

}  // namespace cuda
}  // namespace tempered
