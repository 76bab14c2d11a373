#include "profiling_backend.h"

namespace tempered {

namespace {
std::string conv_shape(const Conv3x3Shape& s) {
  return std::to_string(s.in_h) + "x" + std::to_string(s.in_w) + "x" + std::to_string(s.in_c) + " -> " +
         std::to_string(s.out_h()) + "x" + std::to_string(s.out_w()) + "x" + std::to_string(s.out_c) +
         (s.pool2x2 ? " -> pool" : "");
}
double conv_flops(const Conv3x3Shape& s) { return 2.0 * s.n * s.out_h() * s.out_w() * s.out_c * s.in_c * 9; }
std::string dense_shape(const DenseShape& s) { return std::to_string(s.in) + " -> " + std::to_string(s.out); }
double dense_flops(const DenseShape& s) { return 2.0 * s.n * s.in * s.out; }
std::string hwc(int h, int w, int c) { return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c); }
}  // namespace

template <typename Fn>
Status ProfilingBackend::timed(const char* op, const std::string& shape, double flops, Fn&& fn) {
  TEMPERED_TRY(inner_->synchronize());
  auto t0 = std::chrono::steady_clock::now();
  Status s = fn();
  TEMPERED_TRY(inner_->synchronize());
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  OpProfile& p = table_[{op, shape}];
  p.op = op;
  p.shape = shape;
  p.calls++;
  p.seconds += dt;
  p.flops += flops;
  return s;
}

std::vector<OpProfile> ProfilingBackend::results() const {
  std::vector<OpProfile> out;
  for (const auto& kv : table_) out.push_back(kv.second);
  return out;
}

Status ProfilingBackend::gather_rows(const void* src, size_t rb, const int32_t* idx, int n, void* dst) {
  return timed("gather_rows", std::to_string(rb) + " bytes", 0,
               [&] { return inner_->gather_rows(src, rb, idx, n, dst); });
}
Status ProfilingBackend::conv3x3_forward(const Conv3x3Shape& s, const float* x, const float* w, const float* b,
                                         float* y, bool relu) {
  return timed("conv3x3_forward", conv_shape(s), conv_flops(s),
               [&] { return inner_->conv3x3_forward(s, x, w, b, y, relu); });
}
Status ProfilingBackend::conv3x3_pair_forward(const Conv3x3Shape& first, const float* w1, const float* b1, bool relu1,
                                              const Conv3x3Shape& second, const float* w2, const float* b2, bool relu2,
                                              const float* x, float* y) {
  const std::string shape = conv_shape(first) + " -> " + conv_shape(second).substr(conv_shape(second).find(" -> ") + 4);
  return timed("conv3x3_pair_forward", shape, conv_flops(first) + conv_flops(second),
               [&] { return inner_->conv3x3_pair_forward(first, w1, b1, relu1, second, w2, b2, relu2, x, y); });
}
Status ProfilingBackend::conv3x3_backward_data(const Conv3x3Shape& s, const float* dy, const float* w, float* dx) {
  return timed("conv3x3_backward_data", conv_shape(s), conv_flops(s),
               [&] { return inner_->conv3x3_backward_data(s, dy, w, dx); });
}
Status ProfilingBackend::conv3x3_backward_weights(const Conv3x3Shape& s, const float* x, const float* dy, float* dw,
                                                  float* db) {
  return timed("conv3x3_backward_weights", conv_shape(s), conv_flops(s),
               [&] { return inner_->conv3x3_backward_weights(s, x, dy, dw, db); });
}
Status ProfilingBackend::relu_backward(float* dy, const float* y, size_t count) {
  return timed("relu_backward", std::to_string(count) + " values", 0,
               [&] { return inner_->relu_backward(dy, y, count); });
}
Status ProfilingBackend::relu_forward(const float* x, float* y, size_t count) {
  return timed("relu_forward", std::to_string(count) + " values", 0, [&] { return inner_->relu_forward(x, y, count); });
}
Status ProfilingBackend::pad_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  return timed("pad_hwc", hwc(h, w, c), 0, [&] { return inner_->pad_hwc(n, h, w, c, p, x, y); });
}
Status ProfilingBackend::crop_hwc(int n, int h, int w, int c, int p, const float* x, float* y) {
  return timed("crop_hwc", hwc(h, w, c), 0, [&] { return inner_->crop_hwc(n, h, w, c, p, x, y); });
}
Status ProfilingBackend::maxpool2x2_forward(int n, int h, int w, int c, const float* x, float* y, uint8_t* a) {
  return timed("maxpool2x2_forward", hwc(h, w, c), 0, [&] { return inner_->maxpool2x2_forward(n, h, w, c, x, y, a); });
}
Status ProfilingBackend::maxpool2x2_backward(int n, int h, int w, int c, const float* dy, const uint8_t* a, float* dx) {
  return timed("maxpool2x2_backward", hwc(h, w, c), 0,
               [&] { return inner_->maxpool2x2_backward(n, h, w, c, dy, a, dx); });
}
Status ProfilingBackend::hwc_to_chw(int n, int h, int w, int c, const float* x, float* y) {
  return timed("hwc_to_chw", hwc(h, w, c), 0, [&] { return inner_->hwc_to_chw(n, h, w, c, x, y); });
}
Status ProfilingBackend::chw_to_hwc(int n, int h, int w, int c, const float* x, float* y) {
  return timed("chw_to_hwc", hwc(h, w, c), 0, [&] { return inner_->chw_to_hwc(n, h, w, c, x, y); });
}
Status ProfilingBackend::dense_forward(const DenseShape& s, const float* x, const float* w, const float* b, float* y,
                                       bool relu) {
  return timed("dense_forward", dense_shape(s), dense_flops(s),
               [&] { return inner_->dense_forward(s, x, w, b, y, relu); });
}
Status ProfilingBackend::dense_backward_data(const DenseShape& s, const float* dy, const float* w, float* dx) {
  return timed("dense_backward_data", dense_shape(s), dense_flops(s),
               [&] { return inner_->dense_backward_data(s, dy, w, dx); });
}
Status ProfilingBackend::dense_backward_weights(const DenseShape& s, const float* x, const float* dy, float* dw,
                                                float* db) {
  return timed("dense_backward_weights", dense_shape(s), dense_flops(s),
               [&] { return inner_->dense_backward_weights(s, x, dy, dw, db); });
}
Status ProfilingBackend::dropout(const DropoutKey& key, int n, int units, const float* x, float* y) {
  return timed("dropout", std::to_string(units) + " units", 0, [&] { return inner_->dropout(key, n, units, x, y); });
}
Status ProfilingBackend::softmax_xent(const SoftmaxXentArgs& a, const float* z, float* loss, float* dz) {
  return timed("softmax_xent", std::to_string(a.classes) + " classes", 0,
               [&] { return inner_->softmax_xent(a, z, loss, dz); });
}
Status ProfilingBackend::sgd_nesterov(const SgdArgs& a, size_t count, float* p, const float* g, float* v) {
  return timed("sgd_nesterov", "per tensor", 0, [&] { return inner_->sgd_nesterov(a, count, p, g, v); });
}
Status ProfilingBackend::sweep(const SweepArgs& a) {
  return timed("sweep", std::to_string(2 * a.arch->positions()) + " perturbations", 0,
               [&] { return inner_->sweep(a); });
}

}  // namespace tempered
