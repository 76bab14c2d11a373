// The CUDA backend: every Backend operation on device memory, on one CUDA stream owned by
// the backend. Built as libtempered_cuda.so (native/cuda/CMakeLists.txt) and loaded at run
// time by native/core/backends.cpp through the entry points of plugin.cu.
//
// The operations live one per file, like native/cpu: gather_rows.cu, conv3x3_forward.cu,
// conv3x3_backward_data.cu, conv3x3_backward_weights.cu, relu_forward.cu, relu_backward.cu,
// maxpool2x2.cu, pad_hwc.cu, layout.cu, dense.cu, dropout.cu, softmax_xent.cu, sgd_nesterov.cu;
// the sweep runs as full forward passes of the perturbed images (Network::sweep). The matrix
// products use the tiled kernel of gemm.cuh, or cuDNN (cudnn_conv.cu) and cuBLAS
// (cublas_dense.cu) when they load at run time (cuda_libraries.h), pass the start-up check
// against our own kernels, and TEMPERED_CUDA_KERNELS is not "own".
//
// Errors: every CUDA call is checked and becomes a Status naming the operation (DeviceError,
// or OutOfMemory for a failed allocation); nothing exits or aborts. After an error that
// leaves the CUDA context unusable (an illegal address, a launch failure...), every later
// call returns that error again.
//
// Threads: the N-API layer may run operations of different models on different worker
// threads at once. Each host thread gets its own scratch buffers (and library handles), so
// interleaved operations on the shared stream never share temporary memory, and selects the
// backend's device on its first operation (healthy()), since a new thread starts on device 0.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "common.cuh"
#include "cuda_libraries.h"
#include "tempered/backend.h"

namespace tempered {
namespace cuda {

// Per-thread scratch buffers, one per purpose, grown on demand (never shrunk).
enum ScratchSlot {
  kScratchWeights,       // packed / transposed convolution weights
  kScratchPartials,      // split-K partial products of the weight gradients
  kScratchBiasPartials,  // per-chunk partial sums of the bias gradients
  kScratchLibrary,       // cuDNN workspace
  kScratchSlots
};

struct ThreadWorkspace {
  void* data[kScratchSlots] = {};
  size_t bytes[kScratchSlots] = {};
  void* cudnn = nullptr;   // cudnnHandle_t, created on first use (cudnn_conv.cu)
  void* cublas = nullptr;  // cublasHandle_t, created on first use (cublas_dense.cu)
};

// The operations that cuDNN (the three convolutions) or cuBLAS (the three dense products) may
// run; each falls back to our own kernels on its own after a library error.
enum LibraryOp {
  kLibConvForward,
  kLibConvBackwardData,
  kLibConvBackwardWeights,
  kLibDenseForward,
  kLibDenseBackwardData,
  kLibDenseBackwardWeights,
  kLibOps
};

class CudaBackend final : public Backend {
 public:
  // Creates the backend on the first visible device (or TEMPERED_CUDA_DEVICE), or returns
  // null and says why (no driver, no device, no kernels for this device's architecture).
  static CudaBackend* create(std::string* why);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }
  // The device, the toolkit, which kernels each product uses, and any fallback since start-up.
  std::string device_name() const override;

  Status alloc(size_t bytes, void** out) override;
  void release(void* ptr) override;
  Status upload(void* device_dst, const void* host_src, size_t bytes) override;
  Status download(void* host_dst, const void* device_src, size_t bytes) override;
  Status copy(void* device_dst, const void* device_src, size_t bytes) override;
  Status zero(void* device_dst, size_t bytes) override;
  Status synchronize() override;

  TEMPERED_OVERRIDE_BACKEND_OPERATIONS

  // --- for the operation files -------------------------------------------------------------

  cudaStream_t stream() const { return stream_; }

  // Ok, or the error that broke the context earlier (every operation starts with this).
  Status healthy(const char* op) const;
  // A failed CUDA call as a Status naming `op`; records errors that break the context.
  Status fail(cudaError_t err, const char* op) const;
  Status check(cudaError_t err, const char* op) const { return err == cudaSuccess ? Status::Ok() : fail(err, op); }

  // Launches `kernel` on the backend's stream and checks the launch (and, with
  // TEMPERED_CUDA_SYNC=1, waits for it, so that a fault is reported by the operation that
  // caused it). An empty grid launches nothing.
  template <typename... Params, typename... Args>
  Status launch(const char* op, void (*kernel)(Params...), dim3 grid, dim3 block, Args... args) const {
    static_assert(sizeof...(Params) == sizeof...(Args), "launch: wrong number of kernel arguments");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return Status::Ok();
#if defined(TEMPERED_CUDA_EMULATION)
    emulation::run_kernel(grid, block, [&] { kernel(static_cast<Params>(args)...); });
#else
    kernel<<<grid, block, 0, stream_>>>(static_cast<Params>(args)...);
#endif
    return after_launch(op);
  }

  // A device buffer of at least `bytes` private to the calling host thread, valid until
  // the same thread asks for the same slot again.
  Status scratch(ScratchSlot slot, size_t bytes, void** out, const char* op);
  ThreadWorkspace& workspace();

  // The loaded libraries (null when absent or unusable).
  const CudnnApi* cudnn_api() const { return cudnn_; }
  const CublasApi* cublas_api() const { return cublas_; }
  bool library_on(LibraryOp which) const { return library_on_[which].load(std::memory_order_acquire); }

  // Runs `library` (a cuDNN or cuBLAS path that sets *done) while `which` still uses its
  // library. After a library error, `which` runs on our own kernels for the rest of the
  // process (device_name() says why) and this returns Ok with *done = false, so the caller
  // runs them now; a broken CUDA context or a lack of memory is returned as it is.
  Status through_library(LibraryOp which, const char* op, bool* done, const std::function<Status(bool*)>& library);

 private:
  CudaBackend() = default;
  Status after_launch(const char* op) const;
  void init_libraries(int cuda_major);
  void library_failed(LibraryOp which, const std::string& why);
  // Runs `run` with `which` on its library and then on our kernels; false and *problem when
  // the `count` floats at `result` differ beyond float rounding or the library fails.
  bool agrees_with_own_kernels(LibraryOp which, const char* what, const std::function<Status()>& run,
                               const float* result, size_t count, std::string* problem);
  bool check_cudnn(std::string* problem);
  bool check_cublas(std::string* problem);

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  std::string device_name_;
  bool sync_each_op_ = false;
  const CudnnApi* cudnn_ = nullptr;
  const CublasApi* cublas_ = nullptr;
  std::atomic<bool> library_on_[kLibOps] = {};
  std::string libraries_;  // e.g. "cuDNN 9.10.2, cuBLAS 13.1.0" or "own kernels; cuDNN: ..."
  mutable std::mutex fallback_mutex_;
  std::string fallbacks_;  // operations turned over to our kernels after an error

  mutable std::mutex error_mutex_;
  mutable std::atomic<bool> broken_{false};
  mutable std::string broken_message_;

  std::mutex workspace_mutex_;
  std::unordered_map<std::thread::id, std::unique_ptr<ThreadWorkspace>> workspaces_;
};

// Check a CUDA call inside a CudaBackend method; return the failure as a Status.
#define TEMPERED_CUDA_TRY(op, call)                                             \
  do {                                                                          \
    cudaError_t tempered_cuda_err_ = (call);                                    \
    if (tempered_cuda_err_ != cudaSuccess) return fail(tempered_cuda_err_, op); \
  } while (0)

// The same outside the class, on backend `b`.
#define TEMPERED_CUDA_TRY_ON(b, op, call)                                           \
  do {                                                                              \
    cudaError_t tempered_cuda_err_ = (call);                                        \
    if (tempered_cuda_err_ != cudaSuccess) return (b).fail(tempered_cuda_err_, op); \
  } while (0)

}  // namespace cuda
}  // namespace tempered
