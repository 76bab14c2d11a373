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
  Status alloc(size_t bytes, void** out) override { return inner_->alloc(bytes, out); }
  void release(void* ptr) override { inner_->release(ptr); }
  Status upload(void* d, const void* s, size_t b) override { return inner_->upload(d, s, b); }
  Status download(void* d, const void* s, size_t b) override { return inner_->download(d, s, b); }
  Status copy(void* d, const void* s, size_t b) override { return inner_->copy(d, s, b); }
  Status zero(void* d, size_t b) override { return inner_->zero(d, b); }
  Status synchronize() override { return inner_->synchronize(); }

  Status gather_rows(const void* src, size_t row_bytes, const int32_t* idx, int n, void* dst) override;
  Status conv3x3_forward(const Conv3x3Shape& s, const float* x, const float* w, const float* b, float* y,
                         bool relu) override;
  Status conv3x3_backward_data(const Conv3x3Shape& s, const float* dy, const float* w, float* dx) override;
  Status conv3x3_backward_weights(const Conv3x3Shape& s, const float* x, const float* dy, float* dw,
                                  float* db) override;
  Status relu_backward(float* dy, const float* y, size_t count) override;
  Status maxpool2x2_forward(int n, int h, int w, int c, const float* x, float* y, uint8_t* argmax) override;
  Status maxpool2x2_backward(int n, int h, int w, int c, const float* dy, const uint8_t* argmax, float* dx) override;
  Status hwc_to_chw(int n, int h, int w, int c, const float* x, float* y) override;
  Status chw_to_hwc(int n, int h, int w, int c, const float* x, float* y) override;
  Status dense_forward(const DenseShape& s, const float* x, const float* w, const float* b, float* y,
                       bool relu) override;
  Status dense_backward_data(const DenseShape& s, const float* dy, const float* w, float* dx) override;
  Status dense_backward_weights(const DenseShape& s, const float* x, const float* dy, float* dw, float* db) override;
  Status dropout(const DropoutKey& key, int n, int units, const float* x, float* y) override;
  Status softmax_xent(const SoftmaxXentArgs& a, const float* logits, float* loss, float* dlogits) override;
  Status sgd_nesterov(const SgdArgs& a, size_t count, float* p, const float* g, float* v) override;
  Status sweep(const SweepArgs& a) override;

 private:
  template <typename Fn>
  Status timed(const char* op, const std::string& shape, double flops, Fn&& fn);

  Backend* inner_;
  std::map<std::pair<std::string, std::string>, OpProfile> table_;
};

}  // namespace tempered
