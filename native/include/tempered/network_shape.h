// The paper's network (Song 2017, Table 1), as compile-time constants shared by every
// backend, the model files and the N-API layer.
//
//   x [28x28x1] -> conv1 3x3x32 ReLU [26x26x32] -> conv2 3x3x32 ReLU [24x24x32]
//   -> maxpool 2x2 [12x12x32] -> conv3 3x3x64 ReLU [10x10x64] -> conv4 3x3x64 ReLU [8x8x64]
//   -> maxpool 2x2 [4x4x64] -> flatten (C,H,W order, as PyTorch) [1024] -> dropout
//   -> fc1 200 ReLU -> dropout -> fc2 200 ReLU -> dropout -> fc3 10 -> softmax(z / T)
//
// Activations are stored NHWC (channels last): the CPU kernels vectorise over channels.
// Parameters are stored exactly as PyTorch's nn.Conv2d / nn.Linear hold them
// (conv weight [out][in][3][3], dense weight [out][in]), one flat float32 array in the
// order of kParams, so a model moves between backends and files without conversion.
#pragma once

#include <cstddef>

namespace tempered {
namespace net {

constexpr int kImageSide = 28;
constexpr int kPixels = kImageSide * kImageSide;  // 784
constexpr int kClasses = 10;
constexpr int kHidden = 200;
constexpr int kFlatFeatures = 64 * 4 * 4;  // 1024

struct ConvLayer {
  int in_h, in_w, in_c, out_c;
  constexpr int out_h() const { return in_h - 2; }
  constexpr int out_w() const { return in_w - 2; }
};
constexpr ConvLayer kConv1{28, 28, 1, 32};
constexpr ConvLayer kConv2{26, 26, 32, 32};
constexpr ConvLayer kConv3{12, 12, 32, 64};
constexpr ConvLayer kConv4{10, 10, 64, 64};

enum ParamId {
  kConv1W,
  kConv1B,
  kConv2W,
  kConv2B,
  kConv3W,
  kConv3B,
  kConv4W,
  kConv4B,
  kFc1W,
  kFc1B,
  kFc2W,
  kFc2B,
  kFc3W,
  kFc3B,
  kNumParams
};

struct ParamInfo {
  const char* name;  // the PyTorch state_dict name
  int ndim;
  int dims[4];
  int size;
  int offset;  // into the flat parameter array
  int fan_in;  // Glorot-uniform init (0 for biases: they start at zero)
  int fan_out;
};

// Sizes: 288, 32, 9216, 32, 18432, 64, 36864, 64, 204800, 200, 40000, 200, 2000, 10.
constexpr ParamInfo kParams[kNumParams] = {
    {"conv1.weight", 4, {32, 1, 3, 3}, 288, 0, 1 * 9, 32 * 9},
    {"conv1.bias", 1, {32, 0, 0, 0}, 32, 288, 0, 0},
    {"conv2.weight", 4, {32, 32, 3, 3}, 9216, 320, 32 * 9, 32 * 9},
    {"conv2.bias", 1, {32, 0, 0, 0}, 32, 9536, 0, 0},
    {"conv3.weight", 4, {64, 32, 3, 3}, 18432, 9568, 32 * 9, 64 * 9},
    {"conv3.bias", 1, {64, 0, 0, 0}, 64, 28000, 0, 0},
    {"conv4.weight", 4, {64, 64, 3, 3}, 36864, 28064, 64 * 9, 64 * 9},
    {"conv4.bias", 1, {64, 0, 0, 0}, 64, 64928, 0, 0},
    {"fc1.weight", 2, {200, 1024, 0, 0}, 204800, 64992, 1024, 200},
    {"fc1.bias", 1, {200, 0, 0, 0}, 200, 269792, 0, 0},
    {"fc2.weight", 2, {200, 200, 0, 0}, 40000, 269992, 200, 200},
    {"fc2.bias", 1, {200, 0, 0, 0}, 200, 309992, 0, 0},
    {"fc3.weight", 2, {10, 200, 0, 0}, 2000, 310192, 200, 10},
    {"fc3.bias", 1, {10, 0, 0, 0}, 10, 312192, 0, 0},
};
constexpr int kTotalParams = 312202;

constexpr bool params_are_consistent() {
  int offset = 0;
  for (int i = 0; i < kNumParams; ++i) {
    int size = 1;
    for (int d = 0; d < kParams[i].ndim; ++d) size *= kParams[i].dims[d];
    if (size != kParams[i].size || kParams[i].offset != offset) return false;
    offset += size;
  }
  return offset == kTotalParams;
}
static_assert(params_are_consistent(), "parameter table offsets and sizes disagree");

// Dropout after the flatten, after fc1 and after fc2 (the paper's three layers).
constexpr int kNumDropoutLayers = 3;

}  // namespace net
}  // namespace tempered
