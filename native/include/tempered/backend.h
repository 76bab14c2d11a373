// The Backend interface: one method per operation of the network, on buffers that live
// on the backend's device (host memory for the CPU backend, GPU memory for CUDA).
//
// Conventions, shared by every implementation and checked operation by operation by the
// parity tests:
//  - activations are NHWC float32 ([n][h][w][c]); images too ([n][height][width][channels]);
//  - conv weights are PyTorch's [out_c][in_c][k][k], dense weights [out][in];
//  - every "output" buffer is overwritten, never accumulated into;
//  - index arrays (gather, labels) are device buffers of int32;
//  - a method returns a Status and never throws or exits.
// Methods may run asynchronously on the device; synchronize() waits for them, and
// download() returns only when the data has arrived.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tempered/arch.h"
#include "tempered/attack_loss.h"
#include "tempered/counter_rng.h"
#include "tempered/status.h"

namespace tempered {

// A 'valid' convolution, stride 1, of a k x k kernel: 3 (the kernels tuned for it) or 5 (the
// generic path, conv_generic.cpp / conv_generic.cu). The conv3x3_* operations take both.
struct Conv3x3Shape {
  int n, in_h, in_w, in_c, out_c;
  int k = 3;
  // The caller accepts an algorithm whose float32 rounding differs from the direct
  // kernel's (the CPU backend's Winograd F(2x2, 3x3) where it pays). The network sets it
  // everywhere unless asked for the direct kernel (TrainConfig::fast_conv, trace 'direct').
  bool fast = false;
  // y is the 2x2 max-pool (stride 2) of the ReLU?(convolution), [n][out_h / 2][out_w / 2]
  // [out_c], the same values as conv3x3_forward then maxpool2x2_forward: only for a shape
  // the backend's conv3x3_pools() accepts.
  bool pool2x2 = false;
  int out_h() const { return in_h - k + 1; }
  int out_w() const { return in_w - k + 1; }
};

struct DenseShape {
  int n, in, out;
};

// Softmax cross-entropy at temperature T, as used by training:
//   loss_i = logsumexp(z_i / T) - sum_j t_ij z_ij / T
//   dlogits_i = scale * (softmax(z_i / T) - t_i) / (T * n)   (gradient of scale x the batch mean)
// `scale` multiplies only the gradient (e.g. T, or T^2 as Hinton et al. advise for soft
// targets); the reported loss is the plain cross-entropy.
// where t_i is one-hot(labels[i]) when soft_targets is null, else soft_targets[i].
struct SoftmaxXentArgs {
  int n;
  int classes;
  float temperature;
  float scale;
  const int32_t* labels;      // device, [n]; used when soft_targets is null
  const float* soft_targets;  // device, [n][classes], or null
};

struct SgdArgs {
  float learning_rate;
  float momentum;  // Nesterov momentum (Lasagne's formulation)
  float l2;        // adds l2 * sum(w^2) to the loss: gradient += 2 * l2 * w
};

// Algorithm 2's saliency sweep for n images of the network `arch`: for every position p (a
// pixel, all its channels together), the loss of the image with p set to 1 (losses[i][p])
// and with p set to 0 (losses[i][positions + p]), and the loss of the unmodified image
// (base_losses[i]). Each value equals the loss of a full forward pass of the perturbed image
// through the same backend, bit for bit (the CPU backend recomputes only the windows a
// position can reach). A position already at the target value gets base_losses[i] without
// any computation. Positions with skip[i][p] != 0 are not perturbed and get NaN.
struct SweepArgs {
  int n;
  const ArchPlan* arch;
  const float* images;    // device, [n][input_size]
  const int32_t* labels;  // device, [n]
  const uint8_t* skip;    // device, [n][positions], or null
  const float* params;    // device, the network's flat parameters
  LossSpec spec;
  double* losses;       // device, [n][2][positions]
  double* base_losses;  // device, [n]
};

// The backend's arithmetic operations, declared once: Backend declares each pure virtual,
// and every implementation (CpuBackend, CudaBackend, ProfilingBackend) declares its
// overrides by expanding the same list with TEMPERED_OVERRIDE_BACKEND_OPERATIONS.
//
//  gather_rows: dst[i] = src[indices[i]] for i < n, each row row_bytes long.
//  conv3x3_forward: y = conv(x, w) + b, optionally followed by ReLU.
//  conv3x3_backward_data: dx = gradient w.r.t. the input given dy (the gradient w.r.t. the
//    pre-activation output).
//  conv3x3_backward_weights: dweight, dbias = gradients summed over the batch.
//  relu_forward: y[i] = max(x[i], 0), for a ReLU that does not follow a convolution or dense layer.
//  relu_backward: dy[i] = y[i] > 0 ? dy[i] : 0 (ReLU backward from the ReLU's output), in place.
//  maxpool2x2_forward: 2x2 max pooling, stride 2, on [n][h][w][c] (h, w even). argmax[i] in
//    0..3 records the winning position (dy, dx) = (a / 2, a % 2) of each output; ties go to
//    the first in raster order.
//  maxpool2x2_backward: dx (full size [n][h][w][c]) receives dy at each argmax position and 0
//    elsewhere.
//  pad_hwc: y [n][h + 2p][w + 2p][c] = x [n][h][w][c] with a zero border of p (a 'same' convolution).
//  crop_hwc: y [n][h - 2p][w - 2p][c] = the inside of x [n][h][w][c] (the pad's backward).
//  hwc_to_chw / chw_to_hwc: reorders [n][h][w][c] into [n][c][h][w] (PyTorch's flatten order) and back.
//  dense_forward: y = x w^T + b, optionally followed by ReLU.
//  dense_backward_data / dense_backward_weights: the gradients w.r.t. x, and w.r.t. w and b
//    summed over the batch.
//  dropout: y[i] = x[i] * dropout_factor(key, i) for i < n * units (forward and backward alike).
//  softmax_xent: per-sample losses (device, [n]) and, when dlogits is not null, their
//    batch-mean gradient.
//  sgd_nesterov: one Nesterov-momentum step on `count` parameters (Lasagne's nesterov_momentum):
//    g' = g + 2 l2 w;  v <- momentum v - lr g';  w <- w + momentum v - lr g'
#define TEMPERED_BACKEND_OPERATIONS(X)                                                                                 \
  X(gather_rows, (const void* src, size_t row_bytes, const int32_t* indices, int n, void* dst))                        \
  X(conv3x3_forward,                                                                                                   \
    (const Conv3x3Shape& s, const float* x, const float* weight, const float* bias, float* y, bool relu))              \
  X(conv3x3_backward_data, (const Conv3x3Shape& s, const float* dy, const float* weight, float* dx))                   \
  X(conv3x3_backward_weights, (const Conv3x3Shape& s, const float* x, const float* dy, float* dweight, float* dbias))  \
  X(relu_forward, (const float* x, float* y, size_t count))                                                            \
  X(relu_backward, (float* dy, const float* y, size_t count))                                                          \
  X(maxpool2x2_forward, (int n, int h, int w, int c, const float* x, float* y, uint8_t* argmax))                       \
  X(maxpool2x2_backward, (int n, int h, int w, int c, const float* dy, const uint8_t* argmax, float* dx))              \
  X(pad_hwc, (int n, int h, int w, int c, int p, const float* x, float* y))                                            \
  X(crop_hwc, (int n, int h, int w, int c, int p, const float* x, float* y))                                           \
  X(hwc_to_chw, (int n, int h, int w, int c, const float* x, float* y))                                                \
  X(chw_to_hwc, (int n, int h, int w, int c, const float* x, float* y))                                                \
  X(dense_forward, (const DenseShape& s, const float* x, const float* weight, const float* bias, float* y, bool relu)) \
  X(dense_backward_data, (const DenseShape& s, const float* dy, const float* weight, float* dx))                       \
  X(dense_backward_weights, (const DenseShape& s, const float* x, const float* dy, float* dweight, float* dbias))      \
  X(dropout, (const DropoutKey& key, int n, int units, const float* x, float* y))                                      \
  X(softmax_xent, (const SoftmaxXentArgs& a, const float* logits, float* loss, float* dlogits))                        \
  X(sgd_nesterov, (const SgdArgs& a, size_t count, float* param, const float* grad, float* velocity))

#define TEMPERED_DECLARE_OVERRIDE(name, params) Status name params override;
// Inside an implementation's class: `TEMPERED_OVERRIDE_BACKEND_OPERATIONS` declares them all.
#define TEMPERED_OVERRIDE_BACKEND_OPERATIONS TEMPERED_BACKEND_OPERATIONS(TEMPERED_DECLARE_OVERRIDE)

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;         // "cpu", "cuda"
  virtual std::string device_name() const = 0;  // e.g. "Intel Xeon (avx512, 2 threads)"

  // Memory. alloc of 0 bytes returns a null pointer and Ok.
  virtual Status alloc(size_t bytes, void** out) = 0;
  virtual void release(void* ptr) = 0;
  virtual Status upload(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual Status download(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual Status copy(void* device_dst, const void* device_src, size_t bytes) = 0;
  virtual Status zero(void* device_dst, size_t bytes) = 0;
  virtual Status synchronize() = 0;

  // The arithmetic operations (TEMPERED_BACKEND_OPERATIONS above), each pure virtual.
#define TEMPERED_DECLARE_PURE(name, params) virtual Status name params = 0;
  TEMPERED_BACKEND_OPERATIONS(TEMPERED_DECLARE_PURE)
#undef TEMPERED_DECLARE_PURE

  // Unsupported: the network runs the sweep as full forward passes (Network::sweep).
  virtual Status sweep(const SweepArgs& a) { return Status::Unsupported("no sweep of its own"); }

  // Whether conv3x3_forward computes shape s (pool2x2 set) in one pass. The network asks
  // before each fused call and otherwise runs the two operations.
  virtual bool conv3x3_pools(const Conv3x3Shape& s) const { return false; }

  // Two convolutions in a row at inference, y = second(ReLU?(first(x))) (second's pool2x2
  // and ReLU as in conv3x3_forward), first's output never stored whole: the backend's
  // conv3x3_pairs(first, second) says for which shapes; the network otherwise runs them one
  // after the other, with the same values.
  virtual bool conv3x3_pairs(const Conv3x3Shape& first, const Conv3x3Shape& second) const { return false; }
  virtual Status conv3x3_pair_forward(const Conv3x3Shape& first, const float* weight1, const float* bias1, bool relu1,
                                      const Conv3x3Shape& second, const float* weight2, const float* bias2, bool relu2,
                                      const float* x, float* y) {
    return Status::Unsupported("no fused pair of convolutions");
  }

  // Predictions, evaluations and input gradients run in chunks of images whose largest
  // activation holds at most this many floats (and at most 256 images).
  virtual size_t eval_chunk_floats() const { return size_t{1} << 24; }
};

}  // namespace tempered
