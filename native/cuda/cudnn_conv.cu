// The convolutions through cuDNN's convolution API (cudnn_conv.h).
#include "cudnn_conv.h"

#include <cudnn.h>
#include <dlfcn.h>

#include <map>
#include <mutex>
#include <tuple>

#include "conv_common.cuh"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;

std::string cudnn_text(cudnnStatus_t s) { return cudnnGetErrorString(s); }

Status cudnn_fail(cudnnStatus_t s, const char* op, const char* call) {
  return Status::DeviceError(std::string("cuDNN error in ") + op + " (" + call + "): " + cudnn_text(s));
}

#define TEMPERED_CUDNN_TRY(op, call)                                        \
  do {                                                                      \
    cudnnStatus_t tempered_cudnn_status_ = (call);                          \
    if (tempered_cudnn_status_ != CUDNN_STATUS_SUCCESS)                     \
      return cudnn_fail(tempered_cudnn_status_, op, #call);                 \
  } while (0)

// Descriptors and algorithms for one convolution shape, chosen once.
struct Plan {
  bool usable = false;
  std::string problem;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
};

std::mutex g_plans_mutex;
std::map<std::tuple<int, int, int, int, int>, Plan*> g_plans;

// Deterministic, FMA-only (or default math, which for float without tensor-op math is the
// same), within the workspace limit.
template <typename Perf>
bool acceptable(const Perf& p) {
  return p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC &&
         (p.mathType == CUDNN_FMA_MATH || p.mathType == CUDNN_DEFAULT_MATH) && p.memory <= kMaxWorkspace;
}

Status handle_for(CudaBackend& b, cudnnHandle_t* out, const char* op) {
  ThreadWorkspace& ws = b.workspace();
  if (ws.cudnn == nullptr) {
    cudnnHandle_t h = nullptr;
    TEMPERED_CUDNN_TRY(op, cudnnCreate(&h));
    cudnnStatus_t st = cudnnSetStream(h, b.stream());
    if (st != CUDNN_STATUS_SUCCESS) {
      cudnnDestroy(h);
      return cudnn_fail(st, op, "cudnnSetStream");
    }
    ws.cudnn = h;
  }
  *out = static_cast<cudnnHandle_t>(ws.cudnn);
  return Status::Ok();
}

// Fills in a new plan; p->usable says whether cuDNN can run the shape our way.
Status build_plan(cudnnHandle_t h, const Conv3x3Shape& s, const char* op, Plan* p) {
  TEMPERED_CUDNN_TRY(op, cudnnCreateTensorDescriptor(&p->x));
  TEMPERED_CUDNN_TRY(op, cudnnCreateTensorDescriptor(&p->y));
  TEMPERED_CUDNN_TRY(op, cudnnCreateFilterDescriptor(&p->w));
  TEMPERED_CUDNN_TRY(op, cudnnCreateConvolutionDescriptor(&p->conv));
  TEMPERED_CUDNN_TRY(op, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.in_c, s.in_h, s.in_w));
  TEMPERED_CUDNN_TRY(op, cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.out_c, s.out_h(),
                                                    s.out_w()));
  TEMPERED_CUDNN_TRY(op, cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s.out_c, s.in_c, 3, 3));
  TEMPERED_CUDNN_TRY(op, cudnnSetConvolution2dDescriptor(p->conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT));
  TEMPERED_CUDNN_TRY(op, cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));

  int returned = 0;
  bool found = false;
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y,
                                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, fwd));
  for (int i = 0; i < returned && !found; ++i)
    if (acceptable(fwd[i])) {
      p->fwd = fwd[i].algo;
      found = true;
    }
  if (!found) {
    p->problem = "no deterministic FMA forward algorithm";
    return Status::Ok();
  }
  found = false;
  cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, bd));
  for (int i = 0; i < returned && !found; ++i)
    if (acceptable(bd[i])) {
      p->bwd_data = bd[i].algo;
      found = true;
    }
  if (!found) {
    p->problem = "no deterministic FMA backward-data algorithm";
    return Status::Ok();
  }
  found = false;
  cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w,
                                                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned,
                                                                        bf));
  for (int i = 0; i < returned && !found; ++i)
    if (acceptable(bf[i])) {
      p->bwd_filter = bf[i].algo;
      found = true;
    }
  if (!found) {
    p->problem = "no deterministic FMA backward-filter algorithm";
    return Status::Ok();
  }
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, p->fwd, &p->fwd_bytes));
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, p->bwd_data,
                                                                      &p->bwd_data_bytes));
  TEMPERED_CUDNN_TRY(op, cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, p->bwd_filter,
                                                                        &p->bwd_filter_bytes));
  p->usable = true;
  return Status::Ok();
}

// The plan for a shape, built once (kept even when unusable, so the question is asked once;
// a shape cuDNN cannot do our way falls back to our own kernels).
Status plan_for(CudaBackend& b, const Conv3x3Shape& s, const char* op, Plan** out) {
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  const auto key = std::make_tuple(s.n, s.in_h, s.in_w, s.in_c, s.out_c);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) {
    *out = it->second;
    return Status::Ok();
  }
  Plan* p = new Plan();
  g_plans[key] = p;
  *out = p;
  Status st = build_plan(h, s, op, p);
  if (!st.ok()) {
    p->usable = false;
    p->problem = st.message();
  }
  return Status::Ok();
}

// KRSC copy of the weights in scratch.
Status krsc_weights(CudaBackend& b, const Conv3x3Shape& s, const float* weight, const char* op, float** out) {
  void* packed = nullptr;
  TEMPERED_TRY(b.scratch(kScratchWeights, sizeof(float) * 9 * static_cast<size_t>(s.in_c) * s.out_c, &packed, op));
  *out = static_cast<float*>(packed);
  return pack_conv_weights(b, op, weight, s.out_c, s.in_c, PackOrder::kKTapC, *out);
}

Status workspace_for(CudaBackend& b, size_t bytes, const char* op, void** out) {
  *out = nullptr;
  if (bytes == 0) return Status::Ok();
  return b.scratch(kScratchLibrary, bytes, out, op);
}

// cuDNN loads its sub-libraries (libcudnn_cnn.so.9, ...) with dlopen by name when first
// used, which fails when they are found only through our RPATH (pip's layout). Loading them
// first from libcudnn's own folder lets those dlopen calls find them already loaded.
void preload_sublibraries(int major) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&cudnnCreate), &info) == 0 || info.dli_fname == nullptr) return;
  std::string dir = info.dli_fname;
  const size_t slash = dir.rfind('/');
  if (slash == std::string::npos) return;
  dir.resize(slash + 1);
  const char* names[] = {"libcudnn_graph", "libcudnn_engines_runtime_compiled", "libcudnn_engines_precompiled",
                         "libcudnn_heuristic", "libcudnn_ops", "libcudnn_cnn", "libcudnn_adv",
                         "libcudnn_ops_infer", "libcudnn_ops_train", "libcudnn_cnn_infer", "libcudnn_cnn_train"};
  for (const char* name : names) {
    const std::string path = dir + name + ".so." + std::to_string(major);
    if (dlopen(path.c_str(), RTLD_LAZY | RTLD_GLOBAL | RTLD_NOLOAD) == nullptr)
      if (dlopen(path.c_str(), RTLD_LAZY | RTLD_GLOBAL) == nullptr) dlerror();  // absent: not needed by this version
  }
}

}  // namespace

bool cudnn_probe(CudaBackend& b, std::string* version, std::string* problem) {
  const size_t v = cudnnGetVersion();
  preload_sublibraries(static_cast<int>(v >= 90000 ? v / 10000 : v / 1000));
  // cuDNN 9: major * 10000 + minor * 100 + patch; cuDNN 8: major * 1000 + minor * 100 + patch.
  if (v >= 90000)
    *version = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  else
    *version = std::to_string(v / 1000) + "." + std::to_string(v / 100 % 10) + "." + std::to_string(v % 100);
  Plan* p = nullptr;
  Status st = plan_for(b, Conv3x3Shape{128, 26, 26, 32, 32}, "cuDNN start-up", &p);
  if (!st.ok()) {
    *problem = st.message();
    return false;
  }
  if (!p->usable) {
    *problem = p->problem;
    return false;
  }
  return true;
}

void cudnn_release(ThreadWorkspace& ws) {
  if (ws.cudnn != nullptr) cudnnDestroy(static_cast<cudnnHandle_t>(ws.cudnn));
  ws.cudnn = nullptr;
}

Status cudnn_conv3x3_forward(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* weight,
                             const float* bias, float* y, bool relu, bool* done) {
  const char* op = "conv3x3_forward (cuDNN)";
  *done = false;
  Plan* p = nullptr;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  float* w = nullptr;
  TEMPERED_TRY(krsc_weights(b, s, weight, op, &w));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->fwd_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(op, cudnnConvolutionForward(h, &one, p->x, x, p->w, w, p->conv, p->fwd, ws, p->fwd_bytes, &zero,
                                                 p->y, y));
  TEMPERED_TRY(add_bias(b, op, y, static_cast<size_t>(s.n) * s.out_h() * s.out_w(), s.out_c, bias, relu));
  *done = true;
  return Status::Ok();
}

Status cudnn_conv3x3_backward_data(CudaBackend& b, const Conv3x3Shape& s, const float* dy, const float* weight,
                                   float* dx, bool* done) {
  const char* op = "conv3x3_backward_data (cuDNN)";
  *done = false;
  Plan* p = nullptr;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  float* w = nullptr;
  TEMPERED_TRY(krsc_weights(b, s, weight, op, &w));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->bwd_data_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(op, cudnnConvolutionBackwardData(h, &one, p->w, w, p->y, dy, p->conv, p->bwd_data, ws,
                                                      p->bwd_data_bytes, &zero, p->x, dx));
  *done = true;
  return Status::Ok();
}

Status cudnn_conv3x3_backward_weights(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* dy,
                                      float* dweight, bool* done) {
  const char* op = "conv3x3_backward_weights (cuDNN)";
  *done = false;
  Plan* p = nullptr;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  void* krsc = nullptr;
  TEMPERED_TRY(b.scratch(kScratchWeights, sizeof(float) * 9 * static_cast<size_t>(s.in_c) * s.out_c, &krsc, op));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->bwd_filter_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(op, cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv, p->bwd_filter, ws,
                                                        p->bwd_filter_bytes, &zero, p->w, krsc));
  TEMPERED_TRY(unpack_conv_weights_krsc(b, op, static_cast<const float*>(krsc), s.out_c, s.in_c, dweight));
  *done = true;
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
