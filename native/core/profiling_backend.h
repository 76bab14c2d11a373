// A Backend that forwards every call to another backend and records, per operation and
// shape, the calls, the wall time (synchronising the device around each call) and the
// floating-point operations, for `tempered bench`'s per-layer table.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tempered/backend.h"

namespace tempered {

struct OpProfile {
  std::string op;     // e.g. "conv3x3_forward"
  std::string shape;  // e.g. "26x26x32 -> 24x24x32"
  int64_t calls = 0;
  double seconds = 0;
  double flops = 0;  // multiply-adds count as 2
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(Backend* inner) : inner_(inner) {}

  std::vector<OpProfile> results() const;
  void reset() { table_.clear(); }

  const char* name() const override { return inner_->name(); }
  std::string device_name() const override { return inner_->device_name(); }
  size_t eval_chunk_floats() const override { return inner_->eval_chunk_floats(); }
  bool conv3x3_pools(const Conv3x3Shape& s) const override { return inner_->conv3x3_pools(s); }
  bool conv3x3_pairs(const Conv3x3Shape& a, const Conv3x3Shape& b) const override {
    return inner_->conv3x3_pairs(a, b);
  }
  Status conv3x3_pair_forward(const Conv3x3Shape& first, const float* w1, const float* b1, bool relu1,
                              const Conv3x3Shape& second, const float* w2, const float* b2, bool relu2, const float* x,
                              float* y) override;
  Status alloc(size_t bytes, void** out) override { return inner_->alloc(bytes, out); }
  void release(void* ptr) override { inner_->release(ptr); }
  Status upload(void* d, const void* s, size_t b) override { return inner_->upload(d, s, b); }
  Status download(void* d, const void* s, size_t b) override { return inner_->download(d, s, b); }
  Status copy(void* d, const void* s, size_t b) override { return inner_->copy(d, s, b); }
  Status zero(void* d, size_t b) override { return inner_->zero(d, b); }
  Status synchronize() override { return inner_->synchronize(); }

  TEMPERED_OVERRIDE_BACKEND_OPERATIONS
  Status sweep(const SweepArgs& a) override;

 private:
  template <typename Fn>
  Status timed(const char* op, const std::string& shape, double flops, Fn&& fn);

  Backend* inner_;
  std::map<std::pair<std::string, std::string>, OpProfile> table_;
};

}  // namespace tempered
