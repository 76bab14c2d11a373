#include "cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <vector>

#include "scratch.h"
#include "winograd_f2x2_3x3.h"

namespace tempered {
namespace cpu {

namespace {

std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;

constexpr size_t kAlign = 64;

void* aligned_alloc_bytes(size_t bytes) {
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  return std::aligned_alloc(kAlign, rounded);
}

struct ScratchBuffers {
  float* data[kScratchSlots] = {};
  size_t capacity[kScratchSlots] = {};
  ~ScratchBuffers() {
    for (float* p : data) std::free(p);
  }
};
thread_local ScratchBuffers t_scratch;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "CPU";
}

}  // namespace

float* scratch(ScratchSlot slot, size_t floats) {
  if (floats == 0) floats = 1;
  if (t_scratch.capacity[slot] < floats) {
    std::free(t_scratch.data[slot]);
    size_t grown = floats + floats / 4;  // some headroom for slightly larger batches
    t_scratch.data[slot] = static_cast<float*>(aligned_alloc_bytes(grown * sizeof(float)));
    t_scratch.capacity[slot] = t_scratch.data[slot] != nullptr ? grown : 0;
  }
  return t_scratch.data[slot];
}

ThreadPool& CpuBackend::shared_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(ThreadPool::hardware_threads());
  return *g_pool;
}

ThreadPool& CpuBackend::pool() {
  ThreadPool* own = current_pool();
  return own != nullptr ? *own : shared_pool();
}

void CpuBackend::set_threads(int threads) {
  ThreadPool& p = shared_pool();
  if (p.threads() != threads) p.resize(threads);
}

int CpuBackend::threads() { return shared_pool().threads(); }

CpuBackend::CpuBackend() : kernels_(&active_kernels()) {}

bool CpuBackend::set_isa(const char* isa) {
  const KernelTable* t = kernels_for(isa);
  if (t == nullptr) return false;
  kernels_ = t;
  return true;
}

std::string CpuBackend::device_name() const {
  return cpu_model_name() + " (" + kernels_->isa + ", " + std::to_string(threads()) + " threads; " +
         conv3x3_kernels_summary() + ")";
}

double CpuBackend::fma_peak_gflops(double seconds) const {
  ThreadPool& p = pool();
  const int threads = p.threads();
  std::vector<double> best(threads, 0.0);
  const KernelTable& kt = *kernels_;
  kt.fma_peak(1 << 16);  // warm up (clock ramp, AVX-512 licence)
  // Every task runs short bursts (well under a scheduler time slice) for `seconds` of its
  // own and keeps its best rate: on a shared machine a burst that lost its core to another
  // process says nothing about the core. The peak is the sum of the tasks' best rates.
  p.parallel_for(threads, [&](int64_t task) {
    const auto start = std::chrono::steady_clock::now();
    for (auto t0 = start; std::chrono::duration<double>(t0 - start).count() < seconds;) {
      const double flops = kt.fma_peak(1 << 16);
      const auto t1 = std::chrono::steady_clock::now();
      const double s = std::chrono::duration<double>(t1 - t0).count();
      if (s > 0) best[task] = std::max(best[task], flops / s);
      t0 = t1;
    }
  });
  double total = 0;
  for (double b : best) total += b;
  return total / 1e9;
}

Status CpuBackend::alloc(size_t bytes, void** out) {
  *out = nullptr;
  if (bytes == 0) return Status::Ok();
  void* p = aligned_alloc_bytes(bytes);
  if (p == nullptr) return Status::OutOfMemory("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
  *out = p;
  return Status::Ok();
}

void CpuBackend::release(void* ptr) { std::free(ptr); }

Status CpuBackend::upload(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuBackend::download(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
  return Status::Ok();
}

Status CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
  return Status::Ok();
}

Status CpuBackend::zero(void* dst, size_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
  return Status::Ok();
}

}  // namespace cpu
}  // namespace tempered
