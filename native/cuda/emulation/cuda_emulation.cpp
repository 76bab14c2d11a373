// The host emulation of cuda_emulation.h (tests only).
#include "cuda_emulation.h"

#include <ucontext.h>

#include <cstdio>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace tempered {
namespace cuda {
namespace emulation {

uint3 g_thread_idx;
uint3 g_block_idx;
dim3 g_block_dim;
dim3 g_grid_dim;

namespace {

constexpr size_t kFiberStack = 256 * 1024;

struct Fiber {
  ucontext_t context;
  std::vector<char> stack;
  uint3 index;
  bool done = false;
};

ucontext_t g_scheduler;
std::vector<Fiber> g_fibers;
int g_current = -1;
const std::function<void()>* g_body = nullptr;
bool g_fail_next_malloc = false;
cudaError_t g_sticky = cudaSuccess;
cudaError_t g_last = cudaSuccess;
uint64_t g_digest = 1469598103934665603ull;  // FNV-1a over every device-to-host copy

// The order in which a block's threads take turns between barriers (TEMPERED_EMULATION_ORDER):
// "forward" (thread 0 first), "reversed", or "shuffle:<seed>" (a new seeded permutation at
// every turn). Kernels must give the same bits in every order; one that reads shared memory
// before the __syncthreads that orders it after the write does not.
struct Order {
  enum Kind { kForward, kReversed, kShuffle } kind = kForward;
  std::mt19937_64 rng;
};
Order& order() {
  static Order o = [] {
    Order r;
    const char* v = std::getenv("TEMPERED_EMULATION_ORDER");
    const std::string s = v != nullptr ? v : "forward";
    if (s == "reversed") {
      r.kind = Order::kReversed;
    } else if (s.rfind("shuffle:", 0) == 0) {
      r.kind = Order::kShuffle;
      r.rng.seed(std::strtoull(s.c_str() + 8, nullptr, 10));
    } else if (s != "forward") {
      std::fprintf(stderr, "TEMPERED_EMULATION_ORDER: expected forward, reversed or shuffle:<seed>, got '%s'\n", s.c_str());
      std::abort();
    }
    return r;
  }();
  return o;
}

void take_turn_order(std::vector<size_t>* turn) {
  Order& o = order();
  for (size_t t = 0; t < turn->size(); ++t) (*turn)[t] = t;
  if (o.kind == Order::kReversed) std::reverse(turn->begin(), turn->end());
  if (o.kind == Order::kShuffle) std::shuffle(turn->begin(), turn->end(), o.rng);
}

void fiber_entry() {
  (*g_body)();
  g_fibers[g_current].done = true;
  swapcontext(&g_fibers[g_current].context, &g_scheduler);
}

}  // namespace

void run_kernel(dim3 grid, dim3 block, const std::function<void()>& body) {
  if (g_sticky != cudaSuccess) {
    g_last = g_sticky;
    return;
  }
  if (block.x * block.y * block.z > 1024 || block.x * block.y * block.z == 0 || grid.y > 65535 || grid.z > 65535) {
    g_last = cudaErrorInvalidValue;
    return;
  }
  g_grid_dim = grid;
  g_block_dim = block;
  g_body = &body;
  const size_t threads = static_cast<size_t>(block.x) * block.y * block.z;
  if (g_fibers.size() < threads) g_fibers.resize(threads);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        g_block_idx = uint3{bx, by, bz};
        for (size_t t = 0; t < threads; ++t) {
          Fiber& f = g_fibers[t];
          if (f.stack.empty()) f.stack.resize(kFiberStack);
          f.index = uint3{static_cast<unsigned>(t % block.x), static_cast<unsigned>(t / block.x % block.y),
                          static_cast<unsigned>(t / (static_cast<size_t>(block.x) * block.y))};
          f.done = false;
          getcontext(&f.context);
          f.context.uc_stack.ss_sp = f.stack.data();
          f.context.uc_stack.ss_size = f.stack.size();
          f.context.uc_link = nullptr;
          makecontext(&f.context, fiber_entry, 0);
        }
        // Round-robin: every live thread runs to its next barrier (or its end), in this
        // emulation's order.
        std::vector<size_t> turn(threads);
        bool live = true;
        while (live) {
          live = false;
          take_turn_order(&turn);
          for (size_t t : turn) {
            Fiber& f = g_fibers[t];
            if (f.done) continue;
            g_current = static_cast<int>(t);
            g_thread_idx = f.index;
            swapcontext(&g_scheduler, &f.context);
            if (!f.done) live = true;
          }
        }
      }
  g_current = -1;
}

void syncthreads() {
  if (g_current < 0) std::abort();  // __syncthreads outside a kernel
  swapcontext(&g_fibers[g_current].context, &g_scheduler);
}

void fail_next_malloc() { g_fail_next_malloc = true; }
uint64_t download_digest() { return g_digest; }
void inject_sticky_error() { g_sticky = cudaErrorIllegalAddress; }

}  // namespace emulation
}  // namespace cuda
}  // namespace tempered

using tempered::cuda::emulation::g_fail_next_malloc;
using tempered::cuda::emulation::g_last;
using tempered::cuda::emulation::g_sticky;

#define EMU_STICKY_CHECK() \
  if (g_sticky != cudaSuccess) return g_last = g_sticky

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  std::memset(prop, 0, sizeof(*prop));
  std::strcpy(prop->name, "Host emulation");
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = size_t(1) << 32;
  prop->multiProcessorCount = 1;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 13000;
  return cudaSuccess;
}
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void*) {
  attr->binaryVersion = 90;
  attr->ptxVersion = 90;
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  EMU_STICKY_CHECK();
  if (g_fail_next_malloc) {
    g_fail_next_malloc = false;
    return cudaErrorMemoryAllocation;
  }
  *ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return g_sticky;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  EMU_STICKY_CHECK();
  std::memmove(dst, src, bytes);
  if (kind == cudaMemcpyDeviceToHost)
    for (size_t i = 0; i < bytes; ++i)
      tempered::cuda::emulation::g_digest = (tempered::cuda::emulation::g_digest ^ static_cast<const uint8_t*>(src)[i]) * 1099511628211ull;
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  EMU_STICKY_CHECK();
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  static int token;
  *stream = reinterpret_cast<cudaStream_t>(&token);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return g_sticky; }
cudaError_t cudaDeviceSynchronize() { return g_sticky; }
cudaError_t cudaGetLastError() {
  cudaError_t e = g_last;
  g_last = g_sticky;
  return e;
}
const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorInvalidValue: return "invalid argument";
    default: return "emulated error";
  }
}
const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    default: return "cudaErrorUnknown";
  }
}
