// The run-time network on any Backend: a loop over the steps of an architecture plan
// (tempered/arch.h) calling the backend's operations. Parameters, optimiser state and
// activations live on the backend's device; this class sequences the operations for
// training, inference and input gradients. It holds no arithmetic of its own beyond tiny
// host-side reductions of per-sample results.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "device_buffer.h"
#include "tempered/arch.h"
#include "tempered/backend.h"

namespace tempered {

// A labelled data set resident on a backend's device (uploaded once).
struct DeviceDataset {
  Backend* backend = nullptr;
  int count = 0;
  int input_size = 0;            // floats per image (height x width x channels)
  int classes = 0;               // labels are 0..classes-1
  DeviceBuffer<float> images;    // [count][input_size], pixels in [0, 1]
  DeviceBuffer<int32_t> labels;  // [count]
  DeviceBuffer<float> soft;      // [count][classes] soft targets, or empty
  bool has_soft() const { return soft.size() > 0; }
};

struct TrainConfig {
  float learning_rate = 0.1f;
  float momentum = 0.5f;
  float temperature = 1.0f;
  float loss_scale = 1.0f;     // multiplies the cross-entropy's gradient only
  float l2_output = 0.01f;     // adds l2 * sum(w^2) of the last dense layer's weight to the loss
  float dropout_rate = -1.0f;  // every dropout layer's rate; < 0: each layer's rate in the spec
  uint32_t dropout_seed = 0;
  bool use_soft_targets = false;
  // The step's convolutions may use the backend's faster algorithm (Conv3x3Shape::fast).
  bool fast_conv = true;
};

struct BatchResult {
  double loss_sum = 0;  // sum over the batch of the per-sample cross-entropy
  int correct = 0;      // samples whose argmax logit equals the label
};

// Intermediate results of one forward and backward pass, downloaded for tests.
struct Trace {
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
};

class Network {
 public:
  Network(Backend* backend, ArchPlan plan) : b_(backend), plan_(std::move(plan)) {}
  Status allocate();

  Backend* backend() const { return b_; }
  const ArchPlan& plan() const { return plan_; }
  int input_size() const { return plan_.input_size(); }
  int classes() const { return plan_.classes; }

  // Glorot-uniform weights from counter_rng (seed), zero biases, zero velocity.
  Status init_glorot(uint32_t seed);
  Status set_parameters(const float* host);  // plan().total_params floats
  Status get_parameters(float* host);
  Status set_velocity(const float* host);
  Status get_velocity(float* host);

  // One SGD step on the samples `host_indices` of `data`; `step` selects the dropout masks.
  Status train_step(const DeviceDataset& data, const int32_t* host_indices, int n, const TrainConfig& cfg,
                    uint32_t step, BatchResult* result);

  // Deterministic forward pass (no dropout) over samples [begin, end) of `data`: per-sample
  // cross-entropy at `temperature` and correct count; logits copied to host when not null.
  Status evaluate(const DeviceDataset& data, int begin, int end, float temperature, BatchResult* result,
                  float* host_logits);

  // Deterministic forward pass over host images [n][input_size]; logits to host [n][classes].
  Status predict(const float* host_images, int n, float* host_logits);

  // Per image: the attack loss under `spec`, its gradient w.r.t. the input pixels and the
  // logits. float32 precision backpropagates the float32 loss gradient as the paper's
  // frameworks do (tiny values underflow); float64 backpropagates the float64 gradient
  // scaled to unit maximum and scales the result back in float64 (backpropagation is
  // linear in the upstream gradient), so no information is lost to float32 range.
  Status input_gradient(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec, double* grad,
                        double* loss, float* logits);

  // Input gradients of `rows` linear functions of the logits per image (vector-Jacobian
  // products; native/core/logit_vjp.cpp). After the forward pass of the m images from
  // `start`, seeds(start, m, logits [m][classes], dlogits [rows][m][classes]) chooses them; dx
  // receives [n][rows][input_size] and logits (when not null) [n][classes]. The activations stay in place
  // between the rows, so the forward pass runs once per chunk.
  using LogitSeeds = std::function<void(int start, int m, const float* logits, float* dlogits)>;
  Status logit_vjp(const float* host_images, int n, int rows, const LogitSeeds& seeds, double* dx, float* logits);

  // Per image: the attack loss under `spec` from a full forward pass, and the logits.
  Status attack_losses(const float* host_images, const int32_t* host_labels, int n, const LossSpec& spec, double* loss,
                       float* logits);

  // Algorithm 2's sweep (see SweepArgs): losses [n][2][positions] and base losses [n]. Runs
  // the backend's own sweep where it has one, else full forward passes of the perturbed images.
  Status sweep(const float* host_images, const int32_t* host_labels, const uint8_t* host_skip, int n,
               const LossSpec& spec, double* losses, double* base_losses);

  // One forward and backward pass (training mode when cfg.dropout_rate > 0) on host
  // images and labels or soft targets, without an update; every activation and gradient
  // is returned. For the layer-by-layer tests.
  Status trace(const float* host_images, const int32_t* host_labels, const float* host_soft, int n,
               const TrainConfig& cfg, uint32_t step, Trace* out);

 private:
  Status ensure_capacity(int n);
  int eval_chunk() const;
  // Training mode (dropout on) when train_cfg is not null and a dropout layer's rate is > 0.
  // logits_only: the caller reads nothing but the logits, so a convolution and the max-pool
  // after it may run as one operation (Backend::conv3x3_pools) and the convolution's own
  // output is not kept (outs_ null there); a backward pass needs them, so never with it.
  Status forward(const float* x, int n, const TrainConfig* train_cfg, uint32_t step, bool logits_only = false);
  // The last of the steps from convolution step i on that the backend runs as one operation
  // at inference: i + 1 or i + 2 with a second convolution (*second set; its pool2x2 when
  // the pool after it is included), i + 1 with the pool after it (first->pool2x2 set), i
  // when none.
  size_t fused_conv_end(size_t i, int n, Conv3x3Shape* first, Conv3x3Shape* second) const;
  // Backward from dlogits (device, [n][classes]); weight gradients into grads_ when wanted,
  // the input gradient into dx (device, [n][input_size]) when not null.
  Status backward(const float* x, int n, const TrainConfig* train_cfg, uint32_t step, bool weight_grads, float* dx);
  Status sweep_by_forward(const float* host_images, const int32_t* host_labels, const uint8_t* host_skip, int n,
                          const LossSpec& spec, double* losses, double* base_losses);
  float dropout_rate(const Step& s, const TrainConfig* train) const;
  float* param(int id) const { return params_.get() + plan_.params[id].offset; }
  float* grad(int id) const { return grads_.get() + plan_.params[id].offset; }
  float* logits() const { return outs_.back(); }

  Backend* b_;
  ArchPlan plan_;
  Trace* capture_ = nullptr;  // set during trace(): backward() records each gradient
  // Conv3x3Shape::fast for every operation: true (inference, attacks, sweeps and training use
  // the backend's faster algorithm), except in a train_step() or trace() asked for 'direct'.
  bool fast_conv_ = true;
  DeviceBuffer<float> params_, grads_, velocity_;
  int capacity_ = 0;
  // One output buffer per step (NHWC) for `capacity_` samples, and the argmax of each pooling
  // step; outs_[i] is where step i's output is (a dropout step in inference aliases its input).
  std::vector<DeviceBuffer<float>> acts_;
  std::vector<DeviceBuffer<uint8_t>> argmax_;
  std::vector<float*> outs_;
  DeviceBuffer<float> x_;
  DeviceBuffer<float> g0_, g1_, dz_, loss_;  // gradient ping-pong buffers, dlogits, per-sample loss
  DeviceBuffer<int32_t> idx_, labels_;
  DeviceBuffer<float> soft_;
  std::vector<float> host_losses_, host_logits_;
  std::vector<int32_t> host_labels_;
};

}  // namespace tempered
