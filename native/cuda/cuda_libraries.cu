// Loading cuDNN and cuBLAS with dlopen (cuda_libraries.h), once per process.
#include <dlfcn.h>
#include <link.h>

#include <mutex>

#include "cuda_libraries.h"
#include "library_search.h"

namespace tempered {
namespace cuda {

namespace {

std::string folder_of(const std::string& file) {
  const size_t slash = file.rfind('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash + 1);
}

// Opens the file found by library_search.h or, when none was, the bare name through the
// system linker's paths; *file is the file actually loaded.
void* open_library(const LibraryLookup& found, const std::vector<std::string>& names, std::string* file,
                   std::string* why) {
  std::vector<std::string> tries = found.file.empty() ? names : std::vector<std::string>{found.file};
  std::string errors;
  for (const std::string& name : tries) {
    void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h != nullptr) {
      link_map* map = nullptr;
      *file = dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr ? map->l_name : name;
      return h;
    }
    const char* e = dlerror();
    errors += (errors.empty() ? "" : "; ") + std::string(e ? e : name.c_str());
  }
  *why = errors;
  return nullptr;
}

template <typename Fn>
bool symbol(void* h, const char* name, Fn* out, std::string* missing) {
  *out = reinterpret_cast<Fn>(dlsym(h, name));
  if (*out == nullptr) *missing += (missing->empty() ? "" : ", ") + std::string(name);
  return *out != nullptr;
}

// cuDNN 9's libcudnn.so.9 loads its parts (libcudnn_ops.so.9, ...) by bare name when first
// used; loading them first from its own folder lets those calls find them already loaded,
// which pip's layout (no LD_LIBRARY_PATH entry) needs.
void preload_cudnn_parts(const std::string& dir) {
  const char* parts[] = {"libcudnn_graph",
                         "libcudnn_engines_runtime_compiled",
                         "libcudnn_engines_precompiled",
                         "libcudnn_heuristic",
                         "libcudnn_ops",
                         "libcudnn_cnn",
                         "libcudnn_adv"};
  for (const char* part : parts) {
    const std::string path = dir + part + ".so.9";
    if (dlopen(path.c_str(), RTLD_LAZY | RTLD_GLOBAL) == nullptr) dlerror();  // absent here: not needed
  }
}

std::string cudnn_version_text(size_t v) {  // cuDNN 9: major * 10000 + minor * 100 + patch
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

CudnnApi* load_cudnn_once(std::string* note) {
  const LibraryLookup found = find_cuda_library(cudnn_names(), "CUDNN_ROOT", "cudnn");
  std::string file, why;
  void* h = open_library(found, cudnn_names(), &file, &why);
  if (h == nullptr) {
    *note = found.file.empty() ? describe_lookup("cuDNN", found, cudnn_names())
                               : "cuDNN at " + found.file + " does not load: " + why;
    return nullptr;
  }
  preload_cudnn_parts(folder_of(file));
  CudnnApi* api = new CudnnApi();
  api->file = file;
  std::string missing;
#define TEMPERED_LOAD_CUDNN(ret, name, params) symbol(h, #name, &api->name, &missing);
  TEMPERED_CUDNN_FUNCTIONS(TEMPERED_LOAD_CUDNN)
#undef TEMPERED_LOAD_CUDNN
  if (!missing.empty()) {
    *note = "cuDNN at " + file + " lacks " + missing;
    delete api;
    return nullptr;
  }
  const size_t v = api->cudnnGetVersion();
  api->version = cudnn_version_text(v);
  if (v < 90000 || v >= 100000) {
    *note = "cuDNN at " + file + " is version " + std::to_string(v) + ", not 9.x";
    delete api;
    return nullptr;
  }
  return api;  // kept for the life of the process, as the library is
}

CublasApi* load_cublas_once(int cuda_major, std::string* note) {
  const std::vector<std::string> names = cublas_names(cuda_major);
  const LibraryLookup found = find_cuda_library(names, "CUBLAS_ROOT", "cublas");
  // libcublas needs libcublasLt of the same version; pip puts it beside it.
  if (!found.file.empty()) {
    const std::string suffix = found.file.substr(found.file.rfind(".so."));
    const std::string lt = folder_of(found.file) + "libcublasLt" + suffix;
    if (dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) dlerror();
  }
  std::string file, why;
  void* h = open_library(found, names, &file, &why);
  if (h == nullptr) {
    *note = found.file.empty() ? describe_lookup("cuBLAS", found, names)
                               : "cuBLAS at " + found.file + " does not load: " + why;
    return nullptr;
  }
  CublasApi* api = new CublasApi();
  api->file = file;
  api->major = file.find(".so." + std::to_string(cuda_major)) != std::string::npos ? cuda_major : cuda_major - 1;
  std::string missing;
#define TEMPERED_LOAD_CUBLAS(ret, name, exported, params) symbol(h, #exported, &api->name, &missing);
  TEMPERED_CUBLAS_FUNCTIONS(TEMPERED_LOAD_CUBLAS)
#undef TEMPERED_LOAD_CUBLAS
  if (!missing.empty()) {
    *note = "cuBLAS at " + file + " lacks " + missing;
    delete api;
    return nullptr;
  }
  return api;
}

}  // namespace

const CudnnApi* load_cudnn(std::string* note) {
  static std::once_flag once;
  static CudnnApi* api = nullptr;
  static std::string why;
  std::call_once(once, [] { api = load_cudnn_once(&why); });
  if (api == nullptr) *note = why;
  return api;
}

const CublasApi* load_cublas(int cuda_major, std::string* note) {
  static std::once_flag once;
  static CublasApi* api = nullptr;
  static std::string why;
  std::call_once(once, [cuda_major] { api = load_cublas_once(cuda_major, &why); });
  if (api == nullptr) *note = why;
  return api;
}

}  // namespace cuda
}  // namespace tempered
