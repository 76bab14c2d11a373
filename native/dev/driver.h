// Shared pieces of the kernel drivers (native/dev): each driver runs one CPU operation on
// random data, checks it against a naive double-precision reference, and times it, so a
// kernel change can be checked and measured in seconds without Node or the test suite.
//   <family>_driver <operation> [--reps N] [--threads T] [--isa generic|avx2|avx512] [--seed S] [--n N]
// Exit status: 0 when every output is within tolerance, 1 otherwise, 2 for bad arguments.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_backend.h"

namespace tempered {
namespace dev {

struct Options {
  std::string op;
  int reps = 20;
  int threads = 0;  // 0: the pool's default (every core)
  int n = 0;        // batch size; 0: the driver's default
  uint64_t seed = 1;
  std::string isa;  // empty: the best this CPU supports
};

inline int usage(const char* prog, const std::vector<std::string>& ops) {
  std::fprintf(stderr,
               "usage: %s <operation> [--reps N] [--threads T] [--isa generic|avx2|avx512] [--seed S] [--n N]\n", prog);
  std::fprintf(stderr, "operations:");
  for (const auto& op : ops) std::fprintf(stderr, " %s", op.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

// Parses argv; false (after printing why) on anything unknown.
inline bool parse(int argc, char** argv, const std::vector<std::string>& ops, Options* o) {
  if (argc < 2 || std::find(ops.begin(), ops.end(), argv[1]) == ops.end()) return false;
  o->op = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    if (a == "--reps")
      o->reps = std::max(1, std::atoi(v));
    else if (a == "--threads")
      o->threads = std::max(1, std::atoi(v));
    else if (a == "--n")
      o->n = std::max(1, std::atoi(v));
    else if (a == "--seed")
      o->seed = std::strtoull(v, nullptr, 10);
    else if (a == "--isa")
      o->isa = v;
    else
      return false;
  }
  return true;
}

// The backend the driver measures, with the requested threads and instruction set.
inline bool make_backend(const Options& o, cpu::CpuBackend* b) {
  if (o.threads > 0) cpu::CpuBackend::set_threads(o.threads);
  if (!o.isa.empty() && !b->set_isa(o.isa.c_str())) {
    std::fprintf(stderr, "instruction set '%s' is unknown or not supported by this CPU\n", o.isa.c_str());
    return false;
  }
  std::printf("%s\n", b->device_name().c_str());
  return true;
}

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Backend memory (64-byte aligned on the CPU backend) holding a copy of `host`, or zeros.
template <typename T>
class DeviceArray {
 public:
  DeviceArray(Backend* b, size_t count) : b_(b), count_(count) {
    if (!b_->alloc(sizeof(T) * std::max<size_t>(count, 1), reinterpret_cast<void**>(&p_)).ok()) std::abort();
    b_->zero(p_, sizeof(T) * count);
  }
  DeviceArray(Backend* b, const std::vector<T>& host) : DeviceArray(b, host.size()) {
    b_->upload(p_, host.data(), sizeof(T) * host.size());
  }
  ~DeviceArray() { b_->release(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> v(count_);
    b_->download(v.data(), p_, sizeof(T) * count_);
    return v;
  }

 private:
  Backend* b_;
  size_t count_;
  T* p_ = nullptr;
};

// Worst |got - want| / (atol + rtol |want|) over the outputs: <= 1 passes. Prints one line.
inline bool check(const char* what, const std::vector<float>& got, const std::vector<double>& want, double rtol,
                  double atol) {
  double worst = 0.0, worst_abs = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double ratio = std::isfinite(err) ? err / (atol + rtol * std::fabs(want[i])) : INFINITY;
    if (ratio > worst) worst = ratio, at = i;
    worst_abs = std::max(worst_abs, err);
  }
  const bool ok = worst <= 1.0 && got.size() == want.size();
  std::printf("  check %-16s %s  max |err| %.3g, worst err/allowance %.3f at %zu (rtol %.0e, atol %.0e)\n", what,
              ok ? "ok  " : "FAIL", worst_abs, worst, at, rtol, atol);
  return ok;
}

// Runs `f` once to warm up, then `reps` times; prints the median time and, when `flops` is
// given, the rate.
template <typename F>
void time_it(const char* what, int reps, double flops, F f) {
  f();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  if (flops > 0)
    std::printf("  time  %-16s %.3f ms median of %d (min %.3f), %.1f GFLOP/s\n", what, median, reps, ms.front(),
                flops / (median * 1e6));
  else
    std::printf("  time  %-16s %.3f ms median of %d (min %.3f)\n", what, median, reps, ms.front());
}

inline void require_ok(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s failed: %s\n", what, s.message().c_str());
    std::exit(1);
  }
}

}  // namespace dev
}  // namespace tempered
