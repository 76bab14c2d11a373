// Where cuDNN and cuBLAS are looked for (library_search.h).
#include "library_search.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#ifndef TEMPERED_PYTHON_SITES
#define TEMPERED_PYTHON_SITES ""  // set by CMake from TEMPERED_PYTHON
#endif

namespace tempered {
namespace cuda {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

bool is_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// nvidia/<package>/lib first, then the other nvidia/*/lib folders of one site-packages.
void add_pip_folders(const std::string& site, const char* package, std::vector<std::string>* dirs) {
  const std::string nvidia = site + "/nvidia";
  dirs->push_back(nvidia + "/" + package + "/lib");
  std::vector<std::string> others;
  if (DIR* d = opendir(nvidia.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == ".." || name == package) continue;
      others.push_back(nvidia + "/" + name + "/lib");
    }
    closedir(d);
  }
  std::sort(others.begin(), others.end());
  dirs->insert(dirs->end(), others.begin(), others.end());
}

std::vector<std::string> search_folders(const char* root_env, const char* pip_package) {
  std::vector<std::string> dirs;
  std::vector<std::string> sites = split(env("TEMPERED_PYTHON_SITE_PACKAGES"), ':');
  for (const std::string& s : split(TEMPERED_PYTHON_SITES, ':')) sites.push_back(s);
  for (const std::string& site : sites) add_pip_folders(site, pip_package, &dirs);
  for (const std::string& d : split(env("LD_LIBRARY_PATH"), ':')) dirs.push_back(d);
  const std::string root = env(root_env);
  if (!root.empty()) {
    dirs.push_back(root + "/lib");
    dirs.push_back(root + "/lib64");
    dirs.push_back(root);
  }
  std::vector<std::string> toolkits;
  for (const char* name : {"CUDA_HOME", "CUDA_PATH"})
    if (!env(name).empty()) toolkits.push_back(env(name));
  toolkits.push_back("/usr/local/cuda");
  for (const std::string& t : toolkits)
    for (const char* sub : {"/lib64", "/lib", "/targets/x86_64-linux/lib", "/targets/sbsa-linux/lib"})
      dirs.push_back(t + sub);
  for (const char* d : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"})
    dirs.push_back(d);
  // Each folder once, in first-seen order.
  std::vector<std::string> unique;
  for (const std::string& d : dirs)
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  return unique;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::string describe_lookup(const char* label, const LibraryLookup& found, const std::vector<std::string>& names) {
  if (!found.file.empty()) return std::string(label) + ": " + found.file;
  return std::string(label) + ": " + join(names, " or ") + " not found (searched " + join(found.searched, ", ") +
         "; then the system linker's paths)";
}

LibraryLookup find_cuda_library(const std::vector<std::string>& names, const char* root_env, const char* pip_package) {
  LibraryLookup out;
  out.searched = search_folders(root_env, pip_package);
  for (const std::string& name : names)
    for (const std::string& dir : out.searched)
      if (is_file(dir + "/" + name)) {
        out.file = dir + "/" + name;
        return out;
      }
  return out;
}

std::vector<std::string> cudnn_names() { return {"libcudnn.so.9"}; }

std::vector<std::string> cublas_names(int cuda_major) {
  return {"libcublas.so." + std::to_string(cuda_major), "libcublas.so." + std::to_string(cuda_major - 1)};
}

std::string describe_cuda_libraries(int cuda_major) {
  return describe_lookup("cuDNN", find_cuda_library(cudnn_names(), "CUDNN_ROOT", "cudnn"), cudnn_names()) + "; " +
         describe_lookup("cuBLAS", find_cuda_library(cublas_names(cuda_major), "CUBLAS_ROOT", "cublas"),
                         cublas_names(cuda_major));
}

}  // namespace cuda
}  // namespace tempered
