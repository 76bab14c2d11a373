#include "network.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tempered/counter_rng.h"

namespace tempered {

using namespace net;

namespace {

constexpr int kA1 = 26 * 26 * 32, kA2 = 24 * 24 * 32, kP1 = 12 * 12 * 32, kA3 = 10 * 10 * 64, kA4 = 8 * 8 * 64,
              kP2 = 4 * 4 * 64;
constexpr int kLargestActivation = kA1;
constexpr int kEvalChunk = 256;

Conv3x3Shape conv_shape(const ConvLayer& l, int n) { return Conv3x3Shape{n, l.in_h, l.in_w, l.in_c, l.out_c}; }

int argmax_row(const float* z) {
  int best = 0;
  for (int j = 1; j < kClasses; ++j)
    if (z[j] > z[best]) best = j;
  return best;
}

}  // namespace

Status Network::allocate() {
  TEMPERED_TRY(params_.allocate(b_, kTotalParams));
  TEMPERED_TRY(grads_.allocate(b_, kTotalParams));
  TEMPERED_TRY(velocity_.allocate(b_, kTotalParams));
  TEMPERED_TRY(b_->zero(params_.get(), params_.bytes()));
  TEMPERED_TRY(b_->zero(grads_.get(), grads_.bytes()));
  return b_->zero(velocity_.get(), velocity_.bytes());
}

Status Network::init_glorot(uint32_t seed) {
  std::vector<float> host(kTotalParams, 0.0f);
  for (int id = 0; id < kNumParams; ++id) {
    const ParamInfo& p = kParams[id];
    if (p.fan_in == 0) continue;  // biases start at zero
    const double limit = std::sqrt(6.0 / (p.fan_in + p.fan_out));
    for (int i = 0; i < p.size; ++i) {
      const double u = counter_uniform(seed, kStreamInit, static_cast<uint32_t>(id), static_cast<uint32_t>(i));
      host[p.offset + i] = static_cast<float>((2.0 * u - 1.0) * limit);
    }
  }
  TEMPERED_TRY(set_parameters(host.data()));
  return b_->zero(velocity_.get(), velocity_.bytes());
}

Status Network::set_parameters(const float* host) { return b_->upload(params_.get(), host, params_.bytes()); }
Status Network::get_parameters(float* host) { return b_->download(host, params_.get(), params_.bytes()); }
Status Network::set_velocity(const float* host) { return b_->upload(velocity_.get(), host, velocity_.bytes()); }
Status Network::get_velocity(float* host) { return b_->download(host, velocity_.get(), velocity_.bytes()); }

Status Network::ensure_capacity(int n) {
  if (n <= capacity_) return Status::Ok();
  const size_t m = static_cast<size_t>(n);
  TEMPERED_TRY(x_.allocate(b_, m * kPixels));
  TEMPERED_TRY(a1_.allocate(b_, m * kA1));
  TEMPERED_TRY(a2_.allocate(b_, m * kA2));
  TEMPERED_TRY(p1_.allocate(b_, m * kP1));
  TEMPERED_TRY(a3_.allocate(b_, m * kA3));
  TEMPERED_TRY(a4_.allocate(b_, m * kA4));
  TEMPERED_TRY(p2_.allocate(b_, m * kP2));
  TEMPERED_TRY(f0_.allocate(b_, m * kFlatFeatures));
  TEMPERED_TRY(d0_.allocate(b_, m * kFlatFeatures));
  TEMPERED_TRY(h1_.allocate(b_, m * kHidden));
  TEMPERED_TRY(d1_.allocate(b_, m * kHidden));
  TEMPERED_TRY(h2_.allocate(b_, m * kHidden));
  TEMPERED_TRY(d2_.allocate(b_, m * kHidden));
  TEMPERED_TRY(z_.allocate(b_, m * kClasses));
  TEMPERED_TRY(arg1_.allocate(b_, m * kP1));
  TEMPERED_TRY(arg2_.allocate(b_, m * kP2));
  TEMPERED_TRY(g0_.allocate(b_, m * kLargestActivation));
  TEMPERED_TRY(g1_.allocate(b_, m * kLargestActivation));
  TEMPERED_TRY(dz_.allocate(b_, m * kClasses));
  TEMPERED_TRY(loss_.allocate(b_, m));
  TEMPERED_TRY(idx_.allocate(b_, m));
  TEMPERED_TRY(labels_.allocate(b_, m));
  TEMPERED_TRY(soft_.allocate(b_, m * kClasses));
  capacity_ = n;
  return Status::Ok();
}

Status Network::forward(const float* x, int n, const TrainConfig* train, uint32_t step) {
  const bool dropout = train != nullptr && train->dropout_rate > 0.0f;
  auto key = [&](uint32_t layer) { return DropoutKey{train->dropout_seed, step, layer, train->dropout_rate}; };
  TEMPERED_TRY(b_->conv3x3_forward(conv_shape(kConv1, n), x, param(kConv1W), param(kConv1B), a1_.get(), true));
  TEMPERED_TRY(b_->conv3x3_forward(conv_shape(kConv2, n), a1_.get(), param(kConv2W), param(kConv2B), a2_.get(), true));
  TEMPERED_TRY(b_->maxpool2x2_forward(n, 24, 24, 32, a2_.get(), p1_.get(), arg1_.get()));
  TEMPERED_TRY(b_->conv3x3_forward(conv_shape(kConv3, n), p1_.get(), param(kConv3W), param(kConv3B), a3_.get(), true));
  TEMPERED_TRY(b_->conv3x3_forward(conv_shape(kConv4, n), a3_.get(), param(kConv4W), param(kConv4B), a4_.get(), true));
  TEMPERED_TRY(b_->maxpool2x2_forward(n, 8, 8, 64, a4_.get(), p2_.get(), arg2_.get()));
  TEMPERED_TRY(b_->hwc_to_chw(n, 4, 4, 64, p2_.get(), f0_.get()));
  const float* in1 = f0_.get();
  if (dropout) {
    TEMPERED_TRY(b_->dropout(key(0), n, kFlatFeatures, f0_.get(), d0_.get()));
    in1 = d0_.get();
  }
  TEMPERED_TRY(b_->dense_forward({n, kFlatFeatures, kHidden}, in1, param(kFc1W), param(kFc1B), h1_.get(), true));
  const float* in2 = h1_.get();
  if (dropout) {
    TEMPERED_TRY(b_->dropout(key(1), n, kHidden, h1_.get(), d1_.get()));
    in2 = d1_.get();
  }
  TEMPERED_TRY(b_->dense_forward({n, kHidden, kHidden}, in2, param(kFc2W), param(kFc2B), h2_.get(), true));
  const float* in3 = h2_.get();
  if (dropout) {
    TEMPERED_TRY(b_->dropout(key(2), n, kHidden, h2_.get(), d2_.get()));
    in3 = d2_.get();
  }
  return b_->dense_forward({n, kHidden, kClasses}, in3, param(kFc3W), param(kFc3B), z_.get(), false);
}

Status Network::backward(const float* x, int n, const TrainConfig* train, uint32_t step, bool weight_grads, float* dx) {
  const bool dropout = train != nullptr && train->dropout_rate > 0.0f;
  auto key = [&](uint32_t layer) { return DropoutKey{train->dropout_seed, step, layer, train->dropout_rate}; };
  const float* in1 = dropout ? d0_.get() : f0_.get();
  const float* in2 = dropout ? d1_.get() : h1_.get();
  const float* in3 = dropout ? d2_.get() : h2_.get();
  float* g0 = g0_.get();
  float* g1 = g1_.get();
  // Tests ask for every intermediate gradient (trace); training does not.
  auto capture = [&](const char* name, const float* device, size_t count) -> Status {
    if (capture_ == nullptr) return Status::Ok();
    std::vector<float> host(count);
    TEMPERED_TRY(b_->download(host.data(), device, sizeof(float) * count));
    capture_->tensors.emplace_back(name, std::move(host));
    return Status::Ok();
  };

  // fc3 <- dz
  if (weight_grads)
    TEMPERED_TRY(b_->dense_backward_weights({n, kHidden, kClasses}, in3, dz_.get(), grad(kFc3W), grad(kFc3B)));
  TEMPERED_TRY(b_->dense_backward_data({n, kHidden, kClasses}, dz_.get(), param(kFc3W), g0));
  if (dropout) TEMPERED_TRY(b_->dropout(key(2), n, kHidden, g0, g0));
  TEMPERED_TRY(b_->relu_backward(g0, h2_.get(), static_cast<size_t>(n) * kHidden));
  TEMPERED_TRY(capture("d_fc2", g0, static_cast<size_t>(n) * kHidden));
  // fc2
  if (weight_grads) TEMPERED_TRY(b_->dense_backward_weights({n, kHidden, kHidden}, in2, g0, grad(kFc2W), grad(kFc2B)));
  TEMPERED_TRY(b_->dense_backward_data({n, kHidden, kHidden}, g0, param(kFc2W), g1));
  if (dropout) TEMPERED_TRY(b_->dropout(key(1), n, kHidden, g1, g1));
  TEMPERED_TRY(b_->relu_backward(g1, h1_.get(), static_cast<size_t>(n) * kHidden));
  TEMPERED_TRY(capture("d_fc1", g1, static_cast<size_t>(n) * kHidden));
  // fc1
  if (weight_grads)
    TEMPERED_TRY(b_->dense_backward_weights({n, kFlatFeatures, kHidden}, in1, g1, grad(kFc1W), grad(kFc1B)));
  TEMPERED_TRY(b_->dense_backward_data({n, kFlatFeatures, kHidden}, g1, param(kFc1W), g0));
  if (dropout) TEMPERED_TRY(b_->dropout(key(0), n, kFlatFeatures, g0, g0));
  TEMPERED_TRY(capture("d_flat", g0, static_cast<size_t>(n) * kFlatFeatures));
  // unflatten, pool2
  TEMPERED_TRY(b_->chw_to_hwc(n, 4, 4, 64, g0, g1));
  TEMPERED_TRY(b_->maxpool2x2_backward(n, 8, 8, 64, g1, arg2_.get(), g0));
  TEMPERED_TRY(b_->relu_backward(g0, a4_.get(), static_cast<size_t>(n) * kA4));
  TEMPERED_TRY(capture("d_conv4", g0, static_cast<size_t>(n) * kA4));
  // conv4
  if (weight_grads)
    TEMPERED_TRY(b_->conv3x3_backward_weights(conv_shape(kConv4, n), a3_.get(), g0, grad(kConv4W), grad(kConv4B)));
  TEMPERED_TRY(b_->conv3x3_backward_data(conv_shape(kConv4, n), g0, param(kConv4W), g1));
  TEMPERED_TRY(b_->relu_backward(g1, a3_.get(), static_cast<size_t>(n) * kA3));
  TEMPERED_TRY(capture("d_conv3", g1, static_cast<size_t>(n) * kA3));
  // conv3
  if (weight_grads)
    TEMPERED_TRY(b_->conv3x3_backward_weights(conv_shape(kConv3, n), p1_.get(), g1, grad(kConv3W), grad(kConv3B)));
  TEMPERED_TRY(b_->conv3x3_backward_data(conv_shape(kConv3, n), g1, param(kConv3W), g0));
  // pool1
  TEMPERED_TRY(b_->maxpool2x2_backward(n, 24, 24, 32, g0, arg1_.get(), g1));
  TEMPERED_TRY(b_->relu_backward(g1, a2_.get(), static_cast<size_t>(n) * kA2));
  TEMPERED_TRY(capture("d_conv2", g1, static_cast<size_t>(n) * kA2));
  // conv2
  if (weight_grads)
    TEMPERED_TRY(b_->conv3x3_backward_weights(conv_shape(kConv2, n), a1_.get(), g1, grad(kConv2W), grad(kConv2B)));
  TEMPERED_TRY(b_->conv3x3_backward_data(conv_shape(kConv2, n), g1, param(kConv2W), g0));
  TEMPERED_TRY(b_->relu_backward(g0, a1_.get(), static_cast<size_t>(n) * kA1));
  TEMPERED_TRY(capture("d_conv1", g0, static_cast<size_t>(n) * kA1));
  // conv1
  if (weight_grads)
    TEMPERED_TRY(b_->conv3x3_backward_weights(conv_shape(kConv1, n), x, g0, grad(kConv1W), grad(kConv1B)));
  if (dx != nullptr) TEMPERED_TRY(b_->conv3x3_backward_data(conv_shape(kConv1, n), g0, param(kConv1W), dx));
  return Status::Ok();
}

Status Network::train_step(const DeviceDataset& data, const int32_t* host_indices, int n, const TrainConfig& cfg,
                           uint32_t step, BatchResult* result) {
  if (cfg.use_soft_targets && !data.has_soft()) return Status::InvalidArgument("the data set has no soft targets");
  TEMPERED_TRY(ensure_capacity(n));
  TEMPERED_TRY(b_->upload(idx_.get(), host_indices, sizeof(int32_t) * n));
  TEMPERED_TRY(b_->gather_rows(data.images.get(), sizeof(float) * kPixels, idx_.get(), n, x_.get()));
  TEMPERED_TRY(b_->gather_rows(data.labels.get(), sizeof(int32_t), idx_.get(), n, labels_.get()));
  if (cfg.use_soft_targets)
    TEMPERED_TRY(b_->gather_rows(data.soft.get(), sizeof(float) * kClasses, idx_.get(), n, soft_.get()));

  TEMPERED_TRY(forward(x_.get(), n, &cfg, step));
  SoftmaxXentArgs xa{
      n, kClasses, cfg.temperature, cfg.loss_scale, labels_.get(), cfg.use_soft_targets ? soft_.get() : nullptr};
  TEMPERED_TRY(b_->softmax_xent(xa, z_.get(), loss_.get(), dz_.get()));
  TEMPERED_TRY(backward(x_.get(), n, &cfg, step, true, nullptr));

  SgdArgs sgd{cfg.learning_rate, cfg.momentum, 0.0f};
  for (int id = 0; id < kNumParams; ++id) {
    sgd.l2 = id == kFc3W ? cfg.l2_output : 0.0f;
    const ParamInfo& p = kParams[id];
    TEMPERED_TRY(b_->sgd_nesterov(sgd, p.size, param(id), grad(id), velocity_.get() + p.offset));
  }

  host_losses_.resize(n);
  host_logits_.resize(static_cast<size_t>(n) * kClasses);
  host_labels_.resize(n);
  TEMPERED_TRY(b_->download(host_losses_.data(), loss_.get(), sizeof(float) * n));
  TEMPERED_TRY(b_->download(host_logits_.data(), z_.get(), sizeof(float) * n * kClasses));
  TEMPERED_TRY(b_->download(host_labels_.data(), labels_.get(), sizeof(int32_t) * n));
  result->loss_sum = 0;
  result->correct = 0;
  for (int i = 0; i < n; ++i) {
    result->loss_sum += host_losses_[i];
    result->correct += argmax_row(&host_logits_[static_cast<size_t>(i) * kClasses]) == host_labels_[i];
  }
  return Status::Ok();
}

Status Network::evaluate(const DeviceDataset& data, int begin, int end, float temperature, BatchResult* result,
                         float* host_logits) {
  result->loss_sum = 0;
  result->correct = 0;
  for (int start = begin; start < end; start += kEvalChunk) {
    const int n = std::min(kEvalChunk, end - start);
    TEMPERED_TRY(ensure_capacity(n));
    const float* x = data.images.get() + static_cast<size_t>(start) * kPixels;
    const int32_t* labels = data.labels.get() + start;
    TEMPERED_TRY(forward(x, n, nullptr, 0));
    SoftmaxXentArgs xa{n, kClasses, temperature, 1.0f, labels, nullptr};
    TEMPERED_TRY(b_->softmax_xent(xa, z_.get(), loss_.get(), nullptr));
    host_losses_.resize(n);
    host_logits_.resize(static_cast<size_t>(n) * kClasses);
    host_labels_.resize(n);
    TEMPERED_TRY(b_->download(host_losses_.data(), loss_.get(), sizeof(float) * n));
    TEMPERED_TRY(b_->download(host_logits_.data(), z_.get(), sizeof(float) * n * kClasses));
    TEMPERED_TRY(b_->download(host_labels_.data(), labels, sizeof(int32_t) * n));
    for (int i = 0; i < n; ++i) {
      result->loss_sum += host_losses_[i];
      result->correct += argmax_row(&host_logits_[static_cast<size_t>(i) * kClasses]) == host_labels_[i];
    }
    if (host_logits != nullptr)
      std::memcpy(host_logits + static_cast<size_t>(start - begin) * kClasses, host_logits_.data(),
                  sizeof(float) * n * kClasses);
  }
  return Status::Ok();
}

Status Network::predict(const float* host_images, int n, float* host_logits) {
  for (int start = 0; start < n; start += kEvalChunk) {
    const int m = std::min(kEvalChunk, n - start);
    TEMPERED_TRY(ensure_capacity(m));
    TEMPERED_TRY(b_->upload(x_.get(), host_images + static_cast<size_t>(start) * kPixels, sizeof(float) * m * kPixels));
    TEMPERED_TRY(forward(x_.get(), m, nullptr, 0));
    TEMPERED_TRY(
        b_->download(host_logits + static_cast<size_t>(start) * kClasses, z_.get(), sizeof(float) * m * kClasses));
  }
  return Status::Ok();
}

Status Network::input_gradient(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec,
                               double* grad, double* loss, float* logits) {
  std::vector<float> z(static_cast<size_t>(kEvalChunk) * kClasses), dz(static_cast<size_t>(kEvalChunk) * kClasses),
      dx(static_cast<size_t>(kEvalChunk) * kPixels);
  std::vector<double> scale(kEvalChunk), dz64(kClasses);
  DeviceBuffer<float> dx_dev;
  for (int start = 0; start < n; start += kEvalChunk) {
    const int m = std::min(kEvalChunk, n - start);
    TEMPERED_TRY(ensure_capacity(m));
    TEMPERED_TRY(dx_dev.reserve(b_, static_cast<size_t>(m) * kPixels));
    TEMPERED_TRY(b_->upload(x_.get(), host_images + static_cast<size_t>(start) * kPixels, sizeof(float) * m * kPixels));
    TEMPERED_TRY(forward(x_.get(), m, nullptr, 0));
    TEMPERED_TRY(b_->download(z.data(), z_.get(), sizeof(float) * m * kClasses));
    for (int i = 0; i < m; ++i) {
      const float* zi = &z[static_cast<size_t>(i) * kClasses];
      loss[start + i] = attack_loss(zi, kClasses, host_labels[start + i], spec, dz64.data());
      double s = 1.0;
      if (spec.precision == LossPrecision::kFloat64) {
        s = 0.0;
        for (double v : dz64) s = std::max(s, std::fabs(v));
        if (s == 0.0) s = 1.0;  // an exactly zero gradient stays zero
      }
      scale[i] = s;
      for (int j = 0; j < kClasses; ++j) dz[static_cast<size_t>(i) * kClasses + j] = static_cast<float>(dz64[j] / s);
    }
    if (logits != nullptr)
      std::memcpy(logits + static_cast<size_t>(start) * kClasses, z.data(), sizeof(float) * m * kClasses);
    TEMPERED_TRY(b_->upload(dz_.get(), dz.data(), sizeof(float) * m * kClasses));
    TEMPERED_TRY(backward(x_.get(), m, nullptr, 0, false, dx_dev.get()));
    TEMPERED_TRY(b_->download(dx.data(), dx_dev.get(), sizeof(float) * m * kPixels));
    for (int i = 0; i < m; ++i)
      for (int p = 0; p < kPixels; ++p)
        grad[static_cast<size_t>(start + i) * kPixels + p] =
            static_cast<double>(dx[static_cast<size_t>(i) * kPixels + p]) * scale[i];
  }
  return Status::Ok();
}

Status Network::attack_losses(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec,
                              double* loss, float* logits) {
  TEMPERED_TRY(predict(host_images, n, logits));
  for (int i = 0; i < n; ++i)
    loss[i] = attack_loss(logits + static_cast<size_t>(i) * kClasses, kClasses, host_labels[i], spec, nullptr);
  return Status::Ok();
}

Status Network::sweep(const float* host_images, const int32_t* host_labels, const uint8_t* host_skip, int n,
                      const LossSpec& spec, double* losses, double* base_losses) {
  DeviceBuffer<float> images;
  DeviceBuffer<int32_t> labels;
  DeviceBuffer<uint8_t> skip;
  DeviceBuffer<double> out, base;
  TEMPERED_TRY(images.allocate(b_, static_cast<size_t>(n) * kPixels));
  TEMPERED_TRY(labels.allocate(b_, n));
  TEMPERED_TRY(out.allocate(b_, static_cast<size_t>(n) * 2 * kPixels));
  TEMPERED_TRY(base.allocate(b_, n));
  TEMPERED_TRY(b_->upload(images.get(), host_images, images.bytes()));
  TEMPERED_TRY(b_->upload(labels.get(), host_labels, labels.bytes()));
  if (host_skip != nullptr) {
    TEMPERED_TRY(skip.allocate(b_, static_cast<size_t>(n) * kPixels));
    TEMPERED_TRY(b_->upload(skip.get(), host_skip, skip.bytes()));
  }
  SweepArgs a{n,    images.get(), labels.get(), host_skip ? skip.get() : nullptr, params_.get(),
              spec, out.get(),    base.get()};
  TEMPERED_TRY(b_->sweep(a));
  TEMPERED_TRY(b_->download(losses, out.get(), out.bytes()));
  return b_->download(base_losses, base.get(), base.bytes());
}

Status Network::trace(const float* host_images, const int32_t* host_labels, const float* host_soft, int n,
                      const TrainConfig& cfg, uint32_t step, Trace* out) {
  TEMPERED_TRY(ensure_capacity(n));
  DeviceBuffer<float> dx;
  TEMPERED_TRY(dx.allocate(b_, static_cast<size_t>(n) * kPixels));
  TEMPERED_TRY(b_->upload(x_.get(), host_images, sizeof(float) * n * kPixels));
  TEMPERED_TRY(b_->upload(labels_.get(), host_labels, sizeof(int32_t) * n));
  if (host_soft != nullptr) TEMPERED_TRY(b_->upload(soft_.get(), host_soft, sizeof(float) * n * kClasses));
  const TrainConfig* train = cfg.dropout_rate > 0.0f ? &cfg : nullptr;
  TEMPERED_TRY(forward(x_.get(), n, train, step));
  SoftmaxXentArgs xa{n, kClasses, cfg.temperature, cfg.loss_scale, labels_.get(), host_soft ? soft_.get() : nullptr};
  TEMPERED_TRY(b_->softmax_xent(xa, z_.get(), loss_.get(), dz_.get()));
  capture_ = out;
  Status backward_status = backward(x_.get(), n, train, step, true, dx.get());
  capture_ = nullptr;
  TEMPERED_TRY(backward_status);

  auto take = [&](const char* name, const float* device, size_t count) -> Status {
    std::vector<float> host(count);
    TEMPERED_TRY(b_->download(host.data(), device, sizeof(float) * count));
    out->tensors.emplace_back(name, std::move(host));
    return Status::Ok();
  };
  const size_t m = n;
  TEMPERED_TRY(take("conv1", a1_.get(), m * kA1));
  TEMPERED_TRY(take("conv2", a2_.get(), m * kA2));
  TEMPERED_TRY(take("pool1", p1_.get(), m * kP1));
  TEMPERED_TRY(take("conv3", a3_.get(), m * kA3));
  TEMPERED_TRY(take("conv4", a4_.get(), m * kA4));
  TEMPERED_TRY(take("pool2", p2_.get(), m * kP2));
  TEMPERED_TRY(take("flat", f0_.get(), m * kFlatFeatures));
  TEMPERED_TRY(take("fc1", h1_.get(), m * kHidden));
  TEMPERED_TRY(take("fc2", h2_.get(), m * kHidden));
  TEMPERED_TRY(take("logits", z_.get(), m * kClasses));
  TEMPERED_TRY(take("loss", loss_.get(), m));
  TEMPERED_TRY(take("dlogits", dz_.get(), m * kClasses));
  TEMPERED_TRY(take("dinput", dx.get(), m * kPixels));
  TEMPERED_TRY(take("grad", grads_.get(), kTotalParams));
  return Status::Ok();
}

}  // namespace tempered
