#include "network.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tempered/counter_rng.h"
#include "tempered/sweep_work.h"

namespace tempered {

namespace {

constexpr int kEvalChunk = 256;

int argmax_row(const float* z, int classes) {
  int best = 0;
  for (int j = 1; j < classes; ++j)
    if (z[j] > z[best]) best = j;
  return best;
}

Conv3x3Shape conv_shape(const Step& s, int n, bool fast) {
  Conv3x3Shape c{n, s.in.h, s.in.w, s.in.c, s.out.c, s.kernel};
  c.fast = fast;
  return c;
}

// Sets a network's fast_conv_ for the length of one training step or trace.
class FastConvScope {
 public:
  FastConvScope(bool* flag, bool value) : flag_(flag), saved_(*flag) { *flag_ = value; }
  ~FastConvScope() { *flag_ = saved_; }
  FastConvScope(const FastConvScope&) = delete;
  FastConvScope& operator=(const FastConvScope&) = delete;

 private:
  bool* flag_;
  bool saved_;
};
DenseShape dense_shape(const Step& s, int n) { return DenseShape{n, s.in.c, s.out.c}; }

}  // namespace

Status Network::allocate() {
  const size_t total = plan_.total_params;
  TEMPERED_TRY(params_.allocate(b_, total));
  TEMPERED_TRY(grads_.allocate(b_, total));
  TEMPERED_TRY(velocity_.allocate(b_, total));
  TEMPERED_TRY(b_->zero(params_.get(), params_.bytes()));
  TEMPERED_TRY(b_->zero(grads_.get(), grads_.bytes()));
  return b_->zero(velocity_.get(), velocity_.bytes());
}

int Network::eval_chunk() const {
  const size_t largest = std::max<size_t>(1, plan_.largest_activation);
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(kEvalChunk, b_->eval_chunk_floats() / largest)));
}

Status Network::init_glorot(uint32_t seed) {
  std::vector<float> host(plan_.total_params, 0.0f);
  for (size_t id = 0; id < plan_.params.size(); ++id) {
    const ParamSpec& p = plan_.params[id];
    if (p.fan_in == 0) continue;  // biases start at zero
    const double limit = std::sqrt(6.0 / (p.fan_in + p.fan_out));
    for (size_t i = 0; i < p.size; ++i) {
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
  acts_.resize(plan_.steps.size());
  argmax_.resize(plan_.steps.size());
  outs_.assign(plan_.steps.size(), nullptr);
  TEMPERED_TRY(x_.allocate(b_, m * plan_.input.size()));
  for (size_t i = 0; i < plan_.steps.size(); ++i) {
    const Step& s = plan_.steps[i];
    TEMPERED_TRY(acts_[i].allocate(b_, m * s.out.size()));
    if (s.kind == StepKind::kMaxPool) TEMPERED_TRY(argmax_[i].allocate(b_, m * s.out.size()));
  }
  TEMPERED_TRY(g0_.allocate(b_, m * plan_.largest_activation));
  TEMPERED_TRY(g1_.allocate(b_, m * plan_.largest_activation));
  TEMPERED_TRY(dz_.allocate(b_, m * plan_.classes));
  TEMPERED_TRY(loss_.allocate(b_, m));
  TEMPERED_TRY(idx_.allocate(b_, m));
  TEMPERED_TRY(labels_.allocate(b_, m));
  TEMPERED_TRY(soft_.allocate(b_, m * plan_.classes));
  capacity_ = n;
  return Status::Ok();
}

float Network::dropout_rate(const Step& s, const TrainConfig* train) const {
  if (train == nullptr) return 0.0f;
  return train->dropout_rate >= 0.0f ? train->dropout_rate : s.rate;
}

size_t Network::fused_conv_end(size_t i, int n, Conv3x3Shape* first, Conv3x3Shape* second) const {
  const auto next_is = [&](size_t j, StepKind kind) { return j < plan_.steps.size() && plan_.steps[j].kind == kind; };
  if (next_is(i + 1, StepKind::kConv)) {
    *second = conv_shape(plan_.steps[i + 1], n, fast_conv_);
    second->pool2x2 = next_is(i + 2, StepKind::kMaxPool) && b_->conv3x3_pools(*second);
    if (b_->conv3x3_pairs(*first, *second)) return i + (second->pool2x2 ? 2 : 1);
    *second = Conv3x3Shape{};
  }
  if (next_is(i + 1, StepKind::kMaxPool)) {
    first->pool2x2 = true;
    if (b_->conv3x3_pools(*first)) return i + 1;
    first->pool2x2 = false;
  }
  return i;
}

Status Network::forward(const float* x, int n, const TrainConfig* train, uint32_t step, bool logits_only) {
  const float* in = x;
  for (size_t i = 0; i < plan_.steps.size(); ++i) {
    const Step& s = plan_.steps[i];
    float* out = acts_[i].get();
    const size_t count = static_cast<size_t>(n) * s.out.size();
    switch (s.kind) {
      case StepKind::kPad:
        TEMPERED_TRY(b_->pad_hwc(n, s.in.h, s.in.w, s.in.c, s.pad, in, out));
        break;
      case StepKind::kConv: {
        Conv3x3Shape shape = conv_shape(s, n, fast_conv_), second{};
        const size_t last = logits_only ? fused_conv_end(i, n, &shape, &second) : i;
        if (last == i) {
          TEMPERED_TRY(b_->conv3x3_forward(shape, in, param(s.weight), param(s.bias), out, s.relu));
          break;
        }
        // Steps i..last as one operation, into the last one's output; the ones between are
        // never written.
        out = acts_[last].get();
        if (second.n > 0) {
          const Step& s2 = plan_.steps[i + 1];
          TEMPERED_TRY(b_->conv3x3_pair_forward(shape, param(s.weight), param(s.bias), s.relu, second, param(s2.weight),
                                                param(s2.bias), s2.relu, in, out));
        } else {
          TEMPERED_TRY(b_->conv3x3_forward(shape, in, param(s.weight), param(s.bias), out, s.relu));
        }
        for (size_t j = i; j < last; ++j) outs_[j] = nullptr;
        outs_[last] = out;
        in = out;
        i = last;
        continue;
      }
      case StepKind::kRelu:
        TEMPERED_TRY(b_->relu_forward(in, out, count));
        break;
      case StepKind::kMaxPool:
        TEMPERED_TRY(b_->maxpool2x2_forward(n, s.in.h, s.in.w, s.in.c, in, out, argmax_[i].get()));
        break;
      case StepKind::kDropout: {
        const float rate = dropout_rate(s, train);
        if (rate > 0.0f) {
          TEMPERED_TRY(b_->dropout(DropoutKey{train->dropout_seed, step, s.dropout_id, rate}, n,
                                   static_cast<int>(s.out.size()), in, out));
        } else {
          out = const_cast<float*>(in);  // identity: read the input in place
        }
        break;
      }
      case StepKind::kFlatten:
        TEMPERED_TRY(b_->hwc_to_chw(n, s.in.h, s.in.w, s.in.c, in, out));
        break;
      case StepKind::kDense:
        TEMPERED_TRY(b_->dense_forward(dense_shape(s, n), in, param(s.weight), param(s.bias), out, s.relu));
        break;
    }
    outs_[i] = out;
    in = out;
  }
  return Status::Ok();
}

Status Network::backward(const float* x, int n, const TrainConfig* train, uint32_t step, bool weight_grads, float* dx) {
  // Tests ask for every intermediate gradient (trace); training does not.
  auto capture = [&](const std::string& name, const float* device, size_t count) -> Status {
    if (capture_ == nullptr) return Status::Ok();
    std::vector<float> host(count);
    TEMPERED_TRY(b_->download(host.data(), device, sizeof(float) * count));
    capture_->tensors.emplace_back(name, std::move(host));
    return Status::Ok();
  };
  const int last = static_cast<int>(plan_.steps.size()) - 1;
  float* cur = dz_.get();  // the gradient w.r.t. the output of step i
  for (int i = last; i >= 0; --i) {
    const Step& s = plan_.steps[i];
    const float* in = i == 0 ? x : outs_[i - 1];
    const size_t out_count = static_cast<size_t>(n) * s.out.size();
    // Where an operation that makes a new gradient writes it: the ping-pong buffer not in
    // use, or dx for the first step (null: the input gradient is not wanted).
    float* next = i == 0 ? dx : (cur == g0_.get() ? g1_.get() : g0_.get());
    switch (s.kind) {
      case StepKind::kDense:
        if (s.relu) TEMPERED_TRY(b_->relu_backward(cur, outs_[i], out_count));
        if (i != last) TEMPERED_TRY(capture("d_" + s.name, cur, out_count));
        if (weight_grads)
          TEMPERED_TRY(b_->dense_backward_weights(dense_shape(s, n), in, cur, grad(s.weight), grad(s.bias)));
        if (next != nullptr) TEMPERED_TRY(b_->dense_backward_data(dense_shape(s, n), cur, param(s.weight), next));
        cur = next;
        break;
      case StepKind::kConv:
        if (s.relu) TEMPERED_TRY(b_->relu_backward(cur, outs_[i], out_count));
        TEMPERED_TRY(capture("d_" + s.name, cur, out_count));
        if (weight_grads)
          TEMPERED_TRY(
              b_->conv3x3_backward_weights(conv_shape(s, n, fast_conv_), in, cur, grad(s.weight), grad(s.bias)));
        if (next != nullptr)
          TEMPERED_TRY(b_->conv3x3_backward_data(conv_shape(s, n, fast_conv_), cur, param(s.weight), next));
        cur = next;
        break;
      case StepKind::kRelu:
        TEMPERED_TRY(b_->relu_backward(cur, outs_[i], out_count));
        break;
      case StepKind::kDropout: {
        const float rate = dropout_rate(s, train);
        if (rate > 0.0f)
          TEMPERED_TRY(b_->dropout(DropoutKey{train->dropout_seed, step, s.dropout_id, rate}, n,
                                   static_cast<int>(s.out.size()), cur, cur));
        break;
      }
      case StepKind::kMaxPool:
        if (next != nullptr)
          TEMPERED_TRY(b_->maxpool2x2_backward(n, s.in.h, s.in.w, s.in.c, cur, argmax_[i].get(), next));
        cur = next;
        break;
      case StepKind::kFlatten:
        TEMPERED_TRY(capture("d_flat", cur, out_count));
        if (next != nullptr) TEMPERED_TRY(b_->chw_to_hwc(n, s.in.h, s.in.w, s.in.c, cur, next));
        cur = next;
        break;
      case StepKind::kPad:
        if (next != nullptr) TEMPERED_TRY(b_->crop_hwc(n, s.out.h, s.out.w, s.in.c, s.pad, cur, next));
        cur = next;
        break;
    }
    if (cur == nullptr) return Status::Ok();  // below here only the input gradient, not wanted
  }
  // The first step worked in place (a ReLU or dropout on the input): hand its result over.
  if (dx != nullptr && cur != dx)
    TEMPERED_TRY(b_->copy(dx, cur, sizeof(float) * static_cast<size_t>(n) * plan_.input.size()));
  return Status::Ok();
}

Status Network::train_step(const DeviceDataset& data, const int32_t* host_indices, int n, const TrainConfig& cfg,
                           uint32_t step, BatchResult* result) {
  if (cfg.use_soft_targets && !data.has_soft()) return Status::InvalidArgument("the data set has no soft targets");
  const int in_size = input_size(), classes = plan_.classes;
  TEMPERED_TRY(ensure_capacity(n));
  TEMPERED_TRY(b_->upload(idx_.get(), host_indices, sizeof(int32_t) * n));
  TEMPERED_TRY(b_->gather_rows(data.images.get(), sizeof(float) * in_size, idx_.get(), n, x_.get()));
  TEMPERED_TRY(b_->gather_rows(data.labels.get(), sizeof(int32_t), idx_.get(), n, labels_.get()));
  if (cfg.use_soft_targets)
    TEMPERED_TRY(b_->gather_rows(data.soft.get(), sizeof(float) * classes, idx_.get(), n, soft_.get()));

  const FastConvScope fast(&fast_conv_, cfg.fast_conv);
  TEMPERED_TRY(forward(x_.get(), n, &cfg, step));
  SoftmaxXentArgs xa{
      n, classes, cfg.temperature, cfg.loss_scale, labels_.get(), cfg.use_soft_targets ? soft_.get() : nullptr};
  TEMPERED_TRY(b_->softmax_xent(xa, logits(), loss_.get(), dz_.get()));
  TEMPERED_TRY(backward(x_.get(), n, &cfg, step, true, nullptr));

  // L2 on the output layer's weight only, as the paper's code.
  const int output_weight = plan_.steps.back().weight;
  SgdArgs sgd{cfg.learning_rate, cfg.momentum, 0.0f};
  for (size_t id = 0; id < plan_.params.size(); ++id) {
    sgd.l2 = static_cast<int>(id) == output_weight ? cfg.l2_output : 0.0f;
    const ParamSpec& p = plan_.params[id];
    TEMPERED_TRY(b_->sgd_nesterov(sgd, p.size, param(static_cast<int>(id)), grad(static_cast<int>(id)),
                                  velocity_.get() + p.offset));
  }

  host_losses_.resize(n);
  host_logits_.resize(static_cast<size_t>(n) * classes);
  host_labels_.resize(n);
  TEMPERED_TRY(b_->download(host_losses_.data(), loss_.get(), sizeof(float) * n));
  TEMPERED_TRY(b_->download(host_logits_.data(), logits(), sizeof(float) * n * classes));
  TEMPERED_TRY(b_->download(host_labels_.data(), labels_.get(), sizeof(int32_t) * n));
  result->loss_sum = 0;
  result->correct = 0;
  for (int i = 0; i < n; ++i) {
    result->loss_sum += host_losses_[i];
    result->correct += argmax_row(&host_logits_[static_cast<size_t>(i) * classes], classes) == host_labels_[i];
  }
  return Status::Ok();
}

Status Network::evaluate(const DeviceDataset& data, int begin, int end, float temperature, BatchResult* result,
                         float* host_logits) {
  const int in_size = input_size(), classes = plan_.classes, chunk = eval_chunk();
  result->loss_sum = 0;
  result->correct = 0;
  for (int start = begin; start < end; start += chunk) {
    const int n = std::min(chunk, end - start);
    TEMPERED_TRY(ensure_capacity(n));
    const float* x = data.images.get() + static_cast<size_t>(start) * in_size;
    const int32_t* labels = data.labels.get() + start;
    TEMPERED_TRY(forward(x, n, nullptr, 0, true));
    SoftmaxXentArgs xa{n, classes, temperature, 1.0f, labels, nullptr};
    TEMPERED_TRY(b_->softmax_xent(xa, logits(), loss_.get(), nullptr));
    host_losses_.resize(n);
    host_logits_.resize(static_cast<size_t>(n) * classes);
    host_labels_.resize(n);
    TEMPERED_TRY(b_->download(host_losses_.data(), loss_.get(), sizeof(float) * n));
    TEMPERED_TRY(b_->download(host_logits_.data(), logits(), sizeof(float) * n * classes));
    TEMPERED_TRY(b_->download(host_labels_.data(), labels, sizeof(int32_t) * n));
    for (int i = 0; i < n; ++i) {
      result->loss_sum += host_losses_[i];
      result->correct += argmax_row(&host_logits_[static_cast<size_t>(i) * classes], classes) == host_labels_[i];
    }
    if (host_logits != nullptr)
      std::memcpy(host_logits + static_cast<size_t>(start - begin) * classes, host_logits_.data(),
                  sizeof(float) * n * classes);
  }
  return Status::Ok();
}

Status Network::predict(const float* host_images, int n, float* host_logits) {
  const int in_size = input_size(), classes = plan_.classes, chunk = eval_chunk();
  for (int start = 0; start < n; start += chunk) {
    const int m = std::min(chunk, n - start);
    TEMPERED_TRY(ensure_capacity(m));
    TEMPERED_TRY(b_->upload(x_.get(), host_images + static_cast<size_t>(start) * in_size, sizeof(float) * m * in_size));
    TEMPERED_TRY(forward(x_.get(), m, nullptr, 0, true));
    TEMPERED_TRY(
        b_->download(host_logits + static_cast<size_t>(start) * classes, logits(), sizeof(float) * m * classes));
  }
  return Status::Ok();
}

Status Network::input_gradient(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec,
                               double* grad, double* loss, float* logits_out) {
  const int in_size = input_size(), classes = plan_.classes, chunk = eval_chunk();
  std::vector<float> z(static_cast<size_t>(chunk) * classes), dz(static_cast<size_t>(chunk) * classes),
      dx(static_cast<size_t>(chunk) * in_size);
  std::vector<double> scale(chunk), dz64(classes);
  DeviceBuffer<float> dx_dev;
  for (int start = 0; start < n; start += chunk) {
    const int m = std::min(chunk, n - start);
    TEMPERED_TRY(ensure_capacity(m));
    TEMPERED_TRY(dx_dev.reserve(b_, static_cast<size_t>(m) * in_size));
    TEMPERED_TRY(b_->upload(x_.get(), host_images + static_cast<size_t>(start) * in_size, sizeof(float) * m * in_size));
    TEMPERED_TRY(forward(x_.get(), m, nullptr, 0));
    TEMPERED_TRY(b_->download(z.data(), logits(), sizeof(float) * m * classes));
    for (int i = 0; i < m; ++i) {
      const float* zi = &z[static_cast<size_t>(i) * classes];
      loss[start + i] = attack_loss(zi, classes, host_labels[start + i], spec, dz64.data());
      double s = 1.0;
      if (spec.precision == LossPrecision::kFloat64) {
        s = 0.0;
        for (double v : dz64) s = std::max(s, std::fabs(v));
        if (s == 0.0) s = 1.0;  // an exactly zero gradient stays zero
      }
      scale[i] = s;
      for (int j = 0; j < classes; ++j) dz[static_cast<size_t>(i) * classes + j] = static_cast<float>(dz64[j] / s);
    }
    if (logits_out != nullptr)
      std::memcpy(logits_out + static_cast<size_t>(start) * classes, z.data(), sizeof(float) * m * classes);
    TEMPERED_TRY(b_->upload(dz_.get(), dz.data(), sizeof(float) * m * classes));
    TEMPERED_TRY(backward(x_.get(), m, nullptr, 0, false, dx_dev.get()));
    TEMPERED_TRY(b_->download(dx.data(), dx_dev.get(), sizeof(float) * m * in_size));
    for (int i = 0; i < m; ++i)
      for (int p = 0; p < in_size; ++p)
        grad[static_cast<size_t>(start + i) * in_size + p] =
            static_cast<double>(dx[static_cast<size_t>(i) * in_size + p]) * scale[i];
  }
  return Status::Ok();
}

Status Network::attack_losses(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec,
                              double* loss, float* logits_out) {
  const int classes = plan_.classes;
  TEMPERED_TRY(predict(host_images, n, logits_out));
  for (int i = 0; i < n; ++i)
    loss[i] = attack_loss(logits_out + static_cast<size_t>(i) * classes, classes, host_labels[i], spec, nullptr);
  return Status::Ok();
}

Status Network::sweep(const float* host_images, const int32_t* host_labels, const uint8_t* host_skip, int n,
                      const LossSpec& spec, double* losses, double* base_losses) {
  const size_t in_size = plan_.input.size(), positions = plan_.positions();
  DeviceBuffer<float> images;
  DeviceBuffer<int32_t> labels;
  DeviceBuffer<uint8_t> skip;
  DeviceBuffer<double> out, base;
  TEMPERED_TRY(images.allocate(b_, static_cast<size_t>(n) * in_size));
  TEMPERED_TRY(labels.allocate(b_, n));
  TEMPERED_TRY(out.allocate(b_, static_cast<size_t>(n) * 2 * positions));
  TEMPERED_TRY(base.allocate(b_, n));
  TEMPERED_TRY(b_->upload(images.get(), host_images, images.bytes()));
  TEMPERED_TRY(b_->upload(labels.get(), host_labels, labels.bytes()));
  if (host_skip != nullptr) {
    TEMPERED_TRY(skip.allocate(b_, static_cast<size_t>(n) * positions));
    TEMPERED_TRY(b_->upload(skip.get(), host_skip, skip.bytes()));
  }
  SweepArgs a{n,    &plan_,    images.get(), labels.get(), host_skip ? skip.get() : nullptr, params_.get(),
              spec, out.get(), base.get()};
  const Status st = b_->sweep(a);
  if (st.code() == StatusCode::kUnsupported)
    return sweep_by_forward(host_images, host_labels, host_skip, n, spec, losses, base_losses);
  TEMPERED_TRY(st);
  TEMPERED_TRY(b_->download(losses, out.get(), out.bytes()));
  return b_->download(base_losses, base.get(), base.bytes());
}

// The sweep of a backend without one of its own: the perturbed images, built on the host,
// through the ordinary forward pass in chunks, so each loss is a full forward pass's.
Status Network::sweep_by_forward(const float* host_images, const int32_t* host_labels, const uint8_t* host_skip, int n,
                                 const LossSpec& spec, double* losses, double* base_losses) {
  const int in_size = input_size(), positions = plan_.positions(), channels = plan_.input.c, classes = plan_.classes;
  const int chunk = eval_chunk();
  std::vector<float> z(static_cast<size_t>(n) * classes);
  TEMPERED_TRY(predict(host_images, n, z.data()));
  for (int i = 0; i < n; ++i)
    base_losses[i] = attack_loss(&z[static_cast<size_t>(i) * classes], classes, host_labels[i], spec, nullptr);
  const SweepWork work = list_sweep_work(host_images, n, positions, channels, host_skip, base_losses, losses);
  const std::vector<int32_t>&work_image = work.image, &work_candidate = work.candidate;
  std::vector<float> batch(static_cast<size_t>(chunk) * in_size), batch_z(static_cast<size_t>(chunk) * classes);
  for (size_t first = 0; first < work_image.size(); first += chunk) {
    const int m = static_cast<int>(std::min<size_t>(chunk, work_image.size() - first));
    for (int k = 0; k < m; ++k) {
      const int i = work_image[first + k], candidate = work_candidate[first + k];
      float* dst = &batch[static_cast<size_t>(k) * in_size];
      std::memcpy(dst, host_images + static_cast<size_t>(i) * in_size, sizeof(float) * in_size);
      const int p = candidate % positions;
      for (int ch = 0; ch < channels; ++ch) dst[p * channels + ch] = candidate < positions ? 1.0f : 0.0f;
    }
    TEMPERED_TRY(predict(batch.data(), m, batch_z.data()));
    for (int k = 0; k < m; ++k) {
      const int i = work_image[first + k];
      losses[static_cast<size_t>(i) * 2 * positions + work_candidate[first + k]] =
          attack_loss(&batch_z[static_cast<size_t>(k) * classes], classes, host_labels[i], spec, nullptr);
    }
  }
  return Status::Ok();
}

Status Network::trace(const float* host_images, const int32_t* host_labels, const float* host_soft, int n,
                      const TrainConfig& cfg, uint32_t step, Trace* out) {
  const int in_size = input_size(), classes = plan_.classes;
  TEMPERED_TRY(ensure_capacity(n));
  DeviceBuffer<float> dx;
  TEMPERED_TRY(dx.allocate(b_, static_cast<size_t>(n) * in_size));
  TEMPERED_TRY(b_->upload(x_.get(), host_images, sizeof(float) * n * in_size));
  TEMPERED_TRY(b_->upload(labels_.get(), host_labels, sizeof(int32_t) * n));
  if (host_soft != nullptr) TEMPERED_TRY(b_->upload(soft_.get(), host_soft, sizeof(float) * n * classes));
  const TrainConfig* train = cfg.dropout_rate != 0.0f ? &cfg : nullptr;
  const FastConvScope fast(&fast_conv_, cfg.fast_conv);
  TEMPERED_TRY(forward(x_.get(), n, train, step));
  SoftmaxXentArgs xa{n, classes, cfg.temperature, cfg.loss_scale, labels_.get(), host_soft ? soft_.get() : nullptr};
  TEMPERED_TRY(b_->softmax_xent(xa, logits(), loss_.get(), dz_.get()));
  capture_ = out;
  Status backward_status = backward(x_.get(), n, train, step, true, dx.get());
  capture_ = nullptr;
  TEMPERED_TRY(backward_status);

  auto take = [&](const std::string& name, const float* device, size_t count) -> Status {
    std::vector<float> host(count);
    TEMPERED_TRY(b_->download(host.data(), device, sizeof(float) * count));
    out->tensors.emplace_back(name, std::move(host));
    return Status::Ok();
  };
  const size_t m = n;
  // Each named layer's output (after its fused ReLU); pads and dropouts are not layers of
  // their own in a trace.
  for (size_t i = 0; i < plan_.steps.size(); ++i) {
    const Step& s = plan_.steps[i];
    if (s.kind == StepKind::kPad || s.kind == StepKind::kDropout) continue;
    TEMPERED_TRY(take(s.name, outs_[i], m * s.out.size()));
  }
  TEMPERED_TRY(take("loss", loss_.get(), m));
  TEMPERED_TRY(take("dlogits", dz_.get(), m * classes));
  TEMPERED_TRY(take("dinput", dx.get(), m * in_size));
  TEMPERED_TRY(take("grad", grads_.get(), plan_.total_params));
  return Status::Ok();
}

}  // namespace tempered
