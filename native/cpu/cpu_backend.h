// The CPU backend: the reference every other backend is tested against, and fast in its
// own right (instruction-set-specific kernels from kernels.h, a persistent thread pool).
// Buffers are plain host memory, 64-byte aligned. The operations live one per file
// (conv3x3_forward.cpp, maxpool2x2.cpp, ...).
#pragma once

#include <memory>
#include <string>

#include "kernels.h"
#include "tempered/backend.h"
#include "thread_pool.h"

namespace tempered {
namespace cpu {

class CpuBackend final : public Backend {
 public:
  CpuBackend();

  const char* name() const override { return "cpu"; }
  std::string device_name() const override;

  // Threads of the process-wide pool (>= 1): the one every CPU model uses unless it has a
  // pool of its own (setThreads on the model: the operation runs in a PoolScope).
  static void set_threads(int threads);
  static int threads();
  // The kernels' instruction set; false when `isa` is unknown or unsupported here.
  bool set_isa(const char* isa);
  const KernelTable& kernels() const { return *kernels_; }

  Status alloc(size_t bytes, void** out) override;
  void release(void* ptr) override;
  Status upload(void* dst, const void* src, size_t bytes) override;
  Status download(void* dst, const void* src, size_t bytes) override;
  Status copy(void* dst, const void* src, size_t bytes) override;
  Status zero(void* dst, size_t bytes) override;
  Status synchronize() override { return Status::Ok(); }
  TEMPERED_OVERRIDE_BACKEND_OPERATIONS
  Status sweep(const SweepArgs& a) override;
  // A chunk's activations stay in the last-level cache from one layer to the next: 4 MB
  // (48 images of the paper's network) forwards 1.2x faster at batch 128 than 256 images
  // through memory (docs/performance.md).
  size_t eval_chunk_floats() const override { return size_t{1} << 20; }
  // Where the Winograd forward runs and its tiles are the pool's windows (conv2 and conv4
  // of the paper's network): the pooled output straight from the output transform.
  bool conv3x3_pools(const Conv3x3Shape& s) const override;
  // A direct 3x3 convolution (conv1: few input channels, an output too large to stay in
  // cache) into a Winograd one: conv1's rows are computed per band of the second's tiles
  // into a buffer of the thread's own, and never written to memory.
  bool conv3x3_pairs(const Conv3x3Shape& first, const Conv3x3Shape& second) const override;
  Status conv3x3_pair_forward(const Conv3x3Shape& first, const float* weight1, const float* bias1, bool relu1,
                              const Conv3x3Shape& second, const float* weight2, const float* bias2, bool relu2,
                              const float* x, float* y) override;

  // The pool of the calling thread's operation: its model's own pool (PoolScope) or the
  // process-wide one.
  static ThreadPool& pool();
  static ThreadPool& shared_pool();

  // The measured fp32 multiply-add peak of all pool threads with these kernels, GFLOP/s:
  // the sum of each thread's best short burst (robust to other processes on the machine).
  double fma_peak_gflops(double seconds) const;

 private:
  const KernelTable* kernels_;
};

// The direct kernel's ConvWindow of shape s over x into y, its weights and bias packed into
// the calling thread's scratch (valid until that thread's next such call); false when out
// of memory.
bool direct_conv_window(const Conv3x3Shape& s, const float* x, const float* weight, const float* bias, float* y,
                        bool relu, ConvWindow* out);
// Packs conv weights [k][c][3][3] as packed[(ky * 3 + kx) * c + ci][k_pad] (zeros past k),
// optionally flipped and transposed for the backward-data convolution.
void pack_conv_weights(const float* weight, int out_c, int in_c, int k_pad, float* packed);
void pack_conv_weights_flipped(const float* weight, int out_c, int in_c, int c_pad, float* packed);

inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

}  // namespace cpu
}  // namespace tempered
