// The network's architecture as data: a sequential spec (input shape, then layers), its
// validation, and the plan every part of the engine reads its sizes from (the run-time
// network in native/core, the backends' sweeps, the N-API layer). The TypeScript type
// `ArchSpec` (lib/arch.ts) is the same spec in its JSON form.
//
// Activations are stored NHWC (channels last): the CPU kernels vectorise over channels.
// Input images are [height][width][channels], pixels in [0, 1]. Parameters are stored
// exactly as PyTorch's nn.Conv2d / nn.Linear hold them (conv weight [out][in][k][k], dense
// weight [out][in]), one flat float32 array in the order of the plan's `params`, named as a
// PyTorch state_dict of a module whose convolutions are conv1, conv2, ... and whose dense
// layers are fc1, fc2, ... (the paper's network: conv1..conv4, fc1..fc3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tempered/status.h"

namespace tempered {

enum class LayerKind : uint8_t { kConv, kRelu, kMaxPool, kDropout, kFlatten, kDense };

struct LayerSpec {
  LayerKind kind = LayerKind::kRelu;
  int kernel = 0;     // conv: 3 (5 is refused by this version)
  int filters = 0;    // conv: output channels
  bool same = false;  // conv: zero padding that keeps the size ('same'), else 'valid'
  float rate = 0.0f;  // dropout: the share of units dropped in training
  int units = 0;      // dense: outputs
};

struct ArchSpec {
  int channels = 1, height = 28, width = 28;
  std::vector<LayerSpec> layers;
};

// Limits of a spec (also in lib/arch.ts, and in the error messages).
constexpr int kArchMaxSide = 64;
constexpr int kArchMaxLayers = 64;
constexpr int kArchMaxFilters = 4096;
constexpr int kArchMaxUnits = 65536;
constexpr int kArchMinClasses = 2;
constexpr int kArchMaxClasses = 100;
constexpr double kArchMaxParams = 1e8;
constexpr double kArchMaxActivation = 1 << 24;  // floats per sample in one layer's output

struct Shape3 {
  int h = 0, w = 0, c = 0;  // a flat vector of n features is {1, 1, n}
  size_t size() const { return static_cast<size_t>(h) * w * c; }
};

// One operation of the run-time network, in order. A 'same' convolution becomes a zero pad
// then a 'valid' one; a ReLU right after a convolution or a dense layer is fused into it.
enum class StepKind : uint8_t { kPad, kConv, kRelu, kMaxPool, kDropout, kFlatten, kDense };

struct Step {
  StepKind kind;
  int layer = 0;  // index into spec.layers
  Shape3 in, out;
  int pad = 0;                 // kPad: zero rows/columns added on each side
  int kernel = 0;              // kConv
  bool relu = false;           // kConv, kDense: fused ReLU
  float rate = 0.0f;           // kDropout
  uint32_t dropout_id = 0;     // kDropout: selects the masks (0, 1, 2, ... in order)
  int weight = -1, bias = -1;  // kConv, kDense: indices into ArchPlan::params
  std::string name;            // trace name: conv1, pool1, flat, fc1, ... ("logits" for the last)
};

struct ParamSpec {
  std::string name;  // the PyTorch state_dict name
  std::vector<int> dims;
  size_t size = 0;
  size_t offset = 0;  // into the flat parameter array
  int fan_in = 0;     // Glorot-uniform init (0 for biases: they start at zero)
  int fan_out = 0;
};

struct ArchPlan {
  ArchSpec spec;
  Shape3 input;
  std::vector<Step> steps;
  std::vector<ParamSpec> params;
  size_t total_params = 0;
  size_t largest_activation = 0;  // floats per sample
  int classes = 0;
  int dropout_layers = 0;
  int positions() const { return input.h * input.w; }  // a pixel is a position, all channels
  int input_size() const { return static_cast<int>(input.size()); }
  bool same_as(const ArchPlan& other) const;
};

// Checks the spec and lays out its steps and parameters; a bad spec gives a BadArch status
// naming the layer ("layer 3 (maxpool): ...").
Status plan_arch(const ArchSpec& spec, ArchPlan* plan);

// The paper's network (Song 2017, Table 1):
//   x [28x28x1] -> conv 3x3x32 ReLU -> conv 3x3x32 ReLU -> maxpool 2x2 -> conv 3x3x64 ReLU
//   -> conv 3x3x64 ReLU -> maxpool 2x2 -> flatten (C,H,W order) [1024] -> dropout 0.5
//   -> fc 200 ReLU -> dropout 0.5 -> fc 200 ReLU -> dropout 0.5 -> fc 10
ArchSpec paper_mnist_spec();

}  // namespace tempered
