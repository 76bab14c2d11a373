// The CUDA backend: creation (device selection and probing), memory, errors, scratch.
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "cublas_dense.h"
#include "cuda_backend.h"
#include "cudnn_conv.h"

#ifndef TEMPERED_CUDA_ARCHS
#define TEMPERED_CUDA_ARCHS "unknown"
#endif

namespace tempered {
namespace cuda {

namespace {

// Writes one value: proves that this build has code the device can run.
__global__ void probe_kernel(int* out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) *out = 0x7e3b;
}

// Errors after which the CUDA context is unusable: every later call fails the same way.
bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

std::string error_text(cudaError_t e) { return std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")"; }

std::string version_text(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

std::string visible_devices_note() {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  if (v == nullptr) return "";
  return std::string("; CUDA_VISIBLE_DEVICES is set to '") + v + "', which may hide the devices";
}

}  // namespace

CudaBackend* CudaBackend::create(std::string* why) {
  int runtime_version = 0, driver_version = 0;
  cudaRuntimeGetVersion(&runtime_version);
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it
    cudaDriverGetVersion(&driver_version);
    if (e == cudaErrorNoDevice) {
      *why = "no CUDA device found (cudaGetDeviceCount: " + error_text(e) + ")" + visible_devices_note();
    } else if (e == cudaErrorInsufficientDriver && driver_version == 0) {
      if (void* h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
        dlclose(h);
        *why =
            "the NVIDIA driver (libcuda.so.1) loads but reports no CUDA version (cudaGetDeviceCount: " + error_text(e) +
            ")" + visible_devices_note();
      } else {
        const char* err = dlerror();
        *why = std::string("no NVIDIA driver found (") + (err ? err : "libcuda.so.1 cannot be loaded") + ")" +
               visible_devices_note();
      }
    } else if (e == cudaErrorInsufficientDriver) {
      *why = "the NVIDIA driver supports CUDA " + version_text(driver_version) +
             " but this plugin was built with CUDA " + version_text(runtime_version) +
             "; update the driver or rebuild with an older CUDA toolkit (" + error_text(e) + ")";
    } else {
      *why = "cudaGetDeviceCount failed: " + error_text(e) + visible_devices_note();
    }
    return nullptr;
  }
  if (count <= 0) {
    *why = "no CUDA device found (cudaGetDeviceCount returned 0)" + visible_devices_note();
    return nullptr;
  }
  int device = 0;
  if (const char* d = std::getenv("TEMPERED_CUDA_DEVICE")) {
    char* end = nullptr;
    long v = std::strtol(d, &end, 10);
    if (end == d || *end != '\0' || v < 0 || v >= count) {
      *why = std::string("TEMPERED_CUDA_DEVICE='") + d + "' is not a device index below " + std::to_string(count);
      return nullptr;
    }
    device = static_cast<int>(v);
  }
  e = cudaSetDevice(device);
  cudaDeviceProp prop;
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *why = "cannot use CUDA device " + std::to_string(device) + ": " + error_text(e);
    return nullptr;
  }
  const std::string sm = std::to_string(prop.major) + std::to_string(prop.minor);

  // Does this build hold code for the device (SASS for its architecture, or PTX to JIT)?
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, reinterpret_cast<const void*>(probe_kernel));
  if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction) {
    cudaGetLastError();
    *why = std::string(prop.name) + " is sm_" + sm + ", but this build has no kernels for sm_" + sm +
           " (built for " TEMPERED_CUDA_ARCHS " with CUDA " + version_text(runtime_version) +
           "); rebuild with CMAKE_CUDA_ARCHITECTURES=" + sm + " (npm config set tempered_cuda_architectures " + sm +
           ")" +
           (prop.major < 7 || (prop.major == 7 && prop.minor < 5)
                ? std::string("; CUDA 13 and newer cannot compile for it: use a CUDA 12 toolkit")
                : std::string());
    return nullptr;
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("cannot query the kernels on ") + prop.name + ": " + error_text(e);
    return nullptr;
  }

  std::unique_ptr<CudaBackend> b(new (std::nothrow) CudaBackend());
  if (!b) {
    *why = "out of host memory";
    return nullptr;
  }
  b->device_ = device;
  b->sync_each_op_ = env_flag("TEMPERED_CUDA_SYNC");
  e = cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("cannot create a CUDA stream on ") + prop.name + ": " + error_text(e);
    return nullptr;
  }
  // Run the probe once: a device that cannot execute our code fails here, not mid-training.
  int* probe = nullptr;
  int value = 0;
  e = cudaMalloc(reinterpret_cast<void**>(&probe), sizeof(int));
  if (e == cudaSuccess) {
#if defined(TEMPERED_CUDA_EMULATION)
    emulation::run_kernel(dim3(1), dim3(32), [&] { probe_kernel(probe); });
    e = cudaGetLastError();
#else
    // clang-format 14 splits this launch's >>> (after a member access) into > > >.
    // clang-format off
    probe_kernel<<<1, 32, 0, b->stream_>>>(probe);
    // clang-format on
    e = cudaGetLastError();
#endif
    if (e == cudaSuccess) e = cudaMemcpyAsync(&value, probe, sizeof(int), cudaMemcpyDeviceToHost, b->stream_);
    if (e == cudaSuccess) e = cudaStreamSynchronize(b->stream_);
    cudaFree(probe);
  }
  if (e != cudaSuccess || value != 0x7e3b) {
    cudaGetLastError();
    *why = std::string("a test kernel failed on ") + prop.name + " (sm_" + sm +
           "): " + (e != cudaSuccess ? error_text(e) : std::string("wrong result"));
    return nullptr;
  }

  b->init_libraries(runtime_version / 1000);
  b->device_name_ = std::string(prop.name) + " (sm_" + sm + ", CUDA " + version_text(runtime_version);
  return b.release();
}

std::string CudaBackend::device_name() const {
  std::lock_guard<std::mutex> lock(fallback_mutex_);
  return device_name_ + ", " + libraries_ + fallbacks_ + ")";
}

// Which kernels the products use. A library is used only when it loads, has the expected
// version, offers our algorithms, and computes what our own kernels compute on a small
// problem of each kind (a library that loads but computes wrongly, e.g. cuBLAS of another
// CUDA major version, is caught here rather than mid-training).
void CudaBackend::init_libraries(int cuda_major) {
  const char* kernels = std::getenv("TEMPERED_CUDA_KERNELS");
  const bool own_only = kernels != nullptr && std::strcmp(kernels, "own") == 0;
  std::string conv = "own conv kernels", dense = "own dense kernels", remarks;
  auto remark = [&](const std::string& r) { remarks += "; " + r; };
  if (own_only) {
    remark("cuDNN and cuBLAS disabled by TEMPERED_CUDA_KERNELS=own");
  } else {
    std::string note, problem;
    cudnn_ = load_cudnn(&note);
    if (cudnn_ == nullptr) {
      remark(note);
    } else if (!cudnn_ready(*this, &problem) || !check_cudnn(&problem)) {
      remark("cuDNN " + cudnn_->version + " at " + cudnn_->file + " unusable: " + problem);
    } else {
      conv = "cuDNN " + cudnn_->version;
    }
    note.clear();
    cublas_ = load_cublas(cuda_major, &note);
    std::string version;
    if (cublas_ == nullptr) {
      remark(note);
    } else if (!cublas_version(*this, &version, &problem) || !check_cublas(&problem)) {
      remark("cuBLAS at " + cublas_->file + " unusable: " + problem);
    } else {
      dense = "cuBLAS " + version;
    }
  }
  if (conv == "own conv kernels" && dense == "own dense kernels")
    libraries_ = "own kernels" + remarks;
  else
    libraries_ = conv + ", " + dense + remarks;
}

void CudaBackend::library_failed(LibraryOp which, const std::string& why) {
  static const char* names[kLibOps] = {"conv3x3_forward", "conv3x3_backward_data", "conv3x3_backward_weights",
                                       "dense_forward",   "dense_backward_data",   "dense_backward_weights"};
  std::lock_guard<std::mutex> lock(fallback_mutex_);
  if (!library_on_[which].exchange(false)) return;
  fallbacks_ += std::string("; ") + names[which] + " on own kernels after: " + why;
}

Status CudaBackend::through_library(LibraryOp which, const char* op, bool* done,
                                    const std::function<Status(bool*)>& library) {
  *done = false;
  if (!library_on(which)) return Status::Ok();
  Status st = library(done);
  if (st.ok()) return st;
  *done = false;
  TEMPERED_TRY(healthy(op));
  if (st.code() == StatusCode::kOutOfMemory) return st;
  library_failed(which, st.message());
  return Status::Ok();
}

namespace {

// Small reproducible inputs for the start-up checks.
std::vector<float> check_values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f - 0.5f;
  }
  return v;
}

// Device copies of host vectors, freed together.
struct CheckBuffers {
  CudaBackend* b;
  std::vector<void*> held;
  ~CheckBuffers() {
    for (void* p : held) b->release(p);
  }
  float* put(const std::vector<float>& v, Status* st) {
    void* p = nullptr;
    if (st->ok()) *st = b->alloc(sizeof(float) * v.size(), &p);
    if (st->ok()) *st = b->upload(p, v.data(), sizeof(float) * v.size());
    if (p != nullptr) held.push_back(p);
    return static_cast<float*>(p);
  }
};

}  // namespace

bool CudaBackend::agrees_with_own_kernels(LibraryOp which, const char* what, const std::function<Status()>& run,
                                          const float* result, size_t count, std::string* problem) {
  std::vector<float> with(count), own(count);
  Status st = run();
  if (st.ok()) st = download(with.data(), result, sizeof(float) * count);
  if (st.ok() && !library_on(which)) {
    std::lock_guard<std::mutex> lock(fallback_mutex_);
    *problem = std::string("start-up ") + what + ": " + fallbacks_.substr(fallbacks_.find(" after: ") + 8);
    fallbacks_.clear();
    return false;
  }
  library_on_[which] = false;
  if (st.ok()) st = run();
  if (st.ok()) st = download(own.data(), result, sizeof(float) * count);
  library_on_[which] = true;
  if (!st.ok()) {
    *problem = std::string("start-up ") + what + ": " + st.message();
    return false;
  }
  // As the parity tests: |library - own| <= 1e-5 max|own| + 1e-4 |own|.
  double scale = 0;
  for (float v : own) scale = std::fmax(scale, std::fabs(v));
  for (size_t i = 0; i < count; ++i) {
    const double err = std::fabs(static_cast<double>(with[i]) - own[i]);
    if (!(err <= 1e-5 * scale + 1e-4 * std::fabs(own[i]))) {
      *problem = std::string("start-up ") + what + " differs from our kernels at element " + std::to_string(i) + " (" +
                 std::to_string(with[i]) + " vs " + std::to_string(own[i]) + ")";
      return false;
    }
  }
  return true;
}

bool CudaBackend::check_cudnn(std::string* problem) {
  for (LibraryOp op : {kLibConvForward, kLibConvBackwardData, kLibConvBackwardWeights}) library_on_[op] = true;
  const Conv3x3Shape s{3, 9, 8, 32, 64};
  const size_t xs = static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c,
               ys = static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c;
  const size_t ws = static_cast<size_t>(s.out_c) * s.in_c * 9;
  CheckBuffers buf{this, {}};
  Status st;
  float* x = buf.put(check_values(xs, 1), &st);
  float* w = buf.put(check_values(ws, 2), &st);
  float* bias = buf.put(check_values(s.out_c, 3), &st);
  float* dy = buf.put(check_values(ys, 4), &st);
  float* y = buf.put(std::vector<float>(ys), &st);
  float* dx = buf.put(std::vector<float>(xs), &st);
  float* dw = buf.put(std::vector<float>(ws), &st);
  float* db = buf.put(std::vector<float>(s.out_c), &st);
  bool ok = st.ok();
  if (!ok) *problem = "start-up check: " + st.message();
  ok = ok && agrees_with_own_kernels(
                 kLibConvForward, "convolution forward", [&] { return conv3x3_forward(s, x, w, bias, y, true); }, y, ys,
                 problem);
  ok = ok && agrees_with_own_kernels(
                 kLibConvBackwardData, "convolution backward data", [&] { return conv3x3_backward_data(s, dy, w, dx); },
                 dx, xs, problem);
  ok = ok && agrees_with_own_kernels(
                 kLibConvBackwardWeights, "convolution backward filter",
                 [&] { return conv3x3_backward_weights(s, x, dy, dw, db); }, dw, ws, problem);
  if (!ok)
    for (LibraryOp op : {kLibConvForward, kLibConvBackwardData, kLibConvBackwardWeights}) library_on_[op] = false;
  return ok;
}

bool CudaBackend::check_cublas(std::string* problem) {
  for (LibraryOp op : {kLibDenseForward, kLibDenseBackwardData, kLibDenseBackwardWeights}) library_on_[op] = true;
  const DenseShape s{5, 37, 11};
  const size_t xs = static_cast<size_t>(s.n) * s.in, ys = static_cast<size_t>(s.n) * s.out,
               ws = static_cast<size_t>(s.out) * s.in;
  CheckBuffers buf{this, {}};
  Status st;
  float* x = buf.put(check_values(xs, 5), &st);
  float* w = buf.put(check_values(ws, 6), &st);
  float* bias = buf.put(check_values(s.out, 7), &st);
  float* dy = buf.put(check_values(ys, 8), &st);
  float* y = buf.put(std::vector<float>(ys), &st);
  float* dx = buf.put(std::vector<float>(xs), &st);
  float* dw = buf.put(std::vector<float>(ws), &st);
  float* db = buf.put(std::vector<float>(s.out), &st);
  bool ok = st.ok();
  if (!ok) *problem = "start-up check: " + st.message();
  ok = ok && agrees_with_own_kernels(
                 kLibDenseForward, "sgemm (dense forward)", [&] { return dense_forward(s, x, w, bias, y, false); }, y,
                 ys, problem);
  ok = ok && agrees_with_own_kernels(
                 kLibDenseBackwardData, "sgemm (dense backward data)",
                 [&] { return dense_backward_data(s, dy, w, dx); }, dx, xs, problem);
  ok = ok && agrees_with_own_kernels(
                 kLibDenseBackwardWeights, "sgemm (dense backward weights)",
                 [&] { return dense_backward_weights(s, x, dy, dw, db); }, dw, ws, problem);
  if (!ok)
    for (LibraryOp op : {kLibDenseForward, kLibDenseBackwardData, kLibDenseBackwardWeights}) library_on_[op] = false;
  return ok;
}

CudaBackend::~CudaBackend() {
  // The backend is a process-wide singleton that lives until exit; the driver reclaims
  // everything then. Destroying it explicitly (tests) frees what it holds.
  for (auto& kv : workspaces_) {
    for (int s = 0; s < kScratchSlots; ++s)
      if (kv.second->data[s] != nullptr) cudaFree(kv.second->data[s]);
    if (cudnn_ != nullptr) cudnn_release(*this, *kv.second);
    if (cublas_ != nullptr) cublas_release(*this, *kv.second);
  }
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Status CudaBackend::healthy(const char* op) const {
  // libuv's worker threads start on device 0: select ours once per thread.
  thread_local int selected = -1;
  if (selected != device_) {
    cudaError_t e = cudaSetDevice(device_);
    if (e != cudaSuccess) return fail(e, op);
    selected = device_;
  }
  if (!broken_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(error_mutex_);
  return Status::DeviceError(std::string(op) +
                             ": the CUDA device failed earlier and cannot be used until the process restarts (" +
                             broken_message_ + ")");
}

Status CudaBackend::fail(cudaError_t err, const char* op) const {
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  std::string msg = std::string("CUDA error in ") + op + ": " + error_text(err);
  if (err == cudaErrorMemoryAllocation) return Status::OutOfMemory(msg);
  if (is_sticky(err)) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!broken_.load()) {
      broken_message_ = msg;
      broken_.store(true, std::memory_order_release);
    }
  }
  return Status::DeviceError(msg);
}

Status CudaBackend::after_launch(const char* op) const {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(e, op);
  if (sync_each_op_) {
    e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return fail(e, op);
  }
  return Status::Ok();
}

ThreadWorkspace& CudaBackend::workspace() {
  std::lock_guard<std::mutex> lock(workspace_mutex_);
  std::unique_ptr<ThreadWorkspace>& ws = workspaces_[std::this_thread::get_id()];
  if (!ws) ws.reset(new ThreadWorkspace());
  return *ws;
}

Status CudaBackend::scratch(ScratchSlot slot, size_t bytes, void** out, const char* op) {
  ThreadWorkspace& ws = workspace();
  if (bytes == 0) bytes = 1;
  if (ws.bytes[slot] < bytes) {
    if (ws.data[slot] != nullptr) {
      // cudaFree waits for the device, so kernels still reading the old buffer finish first.
      cudaError_t e = cudaFree(ws.data[slot]);
      ws.data[slot] = nullptr;
      ws.bytes[slot] = 0;
      if (e != cudaSuccess) return fail(e, op);
    }
    const size_t grown = bytes + bytes / 4;  // headroom for slightly larger batches
    cudaError_t e = cudaMalloc(&ws.data[slot], grown);
    if (e != cudaSuccess) {
      ws.data[slot] = nullptr;
      Status st = fail(e, op);
      if (st.code() == StatusCode::kOutOfMemory)
        return Status::OutOfMemory(std::string(op) + ": cannot allocate " + std::to_string(grown) +
                                   " bytes of scratch memory on the GPU");
      return st;
    }
    ws.bytes[slot] = grown;
  }
  *out = ws.data[slot];
  return Status::Ok();
}

Status CudaBackend::alloc(size_t bytes, void** out) {
  *out = nullptr;
  TEMPERED_TRY(healthy("alloc"));
  if (bytes == 0) return Status::Ok();
  cudaError_t e = cudaMalloc(out, bytes);
  if (e != cudaSuccess) {
    *out = nullptr;
    Status st = fail(e, "alloc");
    if (st.code() == StatusCode::kOutOfMemory)
      return Status::OutOfMemory("cannot allocate " + std::to_string(bytes) + " bytes of GPU memory (" + st.message() +
                                 ")");
    return st;
  }
  return Status::Ok();
}

void CudaBackend::release(void* ptr) {
  if (ptr == nullptr) return;
  if (cudaFree(ptr) != cudaSuccess) cudaGetLastError();  // nothing to report to; keep going
}

Status CudaBackend::upload(void* dst, const void* src, size_t bytes) {
  TEMPERED_TRY(healthy("upload"));
  if (bytes == 0) return Status::Ok();
  // From pageable memory the call returns once the data is staged: the caller may reuse
  // its buffer at once.
  TEMPERED_CUDA_TRY("upload", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  return Status::Ok();
}

Status CudaBackend::download(void* dst, const void* src, size_t bytes) {
  TEMPERED_TRY(healthy("download"));
  if (bytes == 0) return Status::Ok();
  TEMPERED_CUDA_TRY("download", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  TEMPERED_CUDA_TRY("download", cudaStreamSynchronize(stream_));
  return Status::Ok();
}

Status CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  TEMPERED_TRY(healthy("copy"));
  if (bytes == 0) return Status::Ok();
  TEMPERED_CUDA_TRY("copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  return Status::Ok();
}

Status CudaBackend::zero(void* dst, size_t bytes) {
  TEMPERED_TRY(healthy("zero"));
  if (bytes == 0) return Status::Ok();
  TEMPERED_CUDA_TRY("zero", cudaMemsetAsync(dst, 0, bytes, stream_));
  return Status::Ok();
}

Status CudaBackend::synchronize() {
  TEMPERED_TRY(healthy("synchronize"));
  TEMPERED_CUDA_TRY("synchronize", cudaStreamSynchronize(stream_));
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
