// The convolutions through cuDNN's convolution API (cudnn_conv.h).
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "conv_common.cuh"
#include "cudnn_conv.h"
#include "gemm.cuh"

namespace tempered {
namespace cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(512) << 20;
// Plans kept at once. The sweep's tail chunks and the shrinking batches of an attack each
// bring a new batch size; the least recently used plan is destroyed beyond this.
constexpr size_t kMaxPlans = 24;

Status cudnn_fail(const CudnnApi& api, cudnnStatus_t s, const char* op, const char* call) {
  const char* text = api.cudnnGetErrorString(s);
  return Status::DeviceError(std::string("cuDNN error in ") + op + " (" + call + "): " + (text ? text : "unknown") +
                             " (status " + std::to_string(s) + ")");
}

#define TEMPERED_CUDNN_TRY(api, op, call)                                                                          \
  do {                                                                                                             \
    cudnnStatus_t tempered_cudnn_status_ = (api).call;                                                             \
    if (tempered_cudnn_status_ != CUDNN_STATUS_SUCCESS) return cudnn_fail(api, tempered_cudnn_status_, op, #call); \
  } while (0)

// Descriptors and algorithms for one convolution shape, chosen once; destroyed with the plan.
struct Plan {
  const CudnnApi* api = nullptr;
  bool usable = false;
  std::string problem;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  cudnnConvolutionBwdFilterAlgo_t bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  size_t fwd_bytes = 0, bwd_data_bytes = 0, bwd_filter_bytes = 0;
  ~Plan() {
    if (x != nullptr) api->cudnnDestroyTensorDescriptor(x);
    if (y != nullptr) api->cudnnDestroyTensorDescriptor(y);
    if (w != nullptr) api->cudnnDestroyFilterDescriptor(w);
    if (conv != nullptr) api->cudnnDestroyConvolutionDescriptor(conv);
  }
};

typedef std::tuple<int, int, int, int, int> PlanKey;
// Most recently used first; a plan in use elsewhere survives its eviction (shared_ptr).
std::mutex g_plans_mutex;
std::list<std::pair<PlanKey, std::shared_ptr<Plan>>> g_plans;

// The one algorithm accepted for each pass (see cudnn_conv.h), deterministic, FMA math, and
// within the workspace limit.
bool acceptable_algo(cudnnConvolutionFwdAlgo_t a) { return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM; }
bool acceptable_algo(cudnnConvolutionBwdDataAlgo_t a) { return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1; }
bool acceptable_algo(cudnnConvolutionBwdFilterAlgo_t a) { return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1; }

template <typename Algo>
bool pick(const CudnnAlgoPerf<Algo>* perf, int count, Algo* out) {
  for (int i = 0; i < count; ++i) {
    const CudnnAlgoPerf<Algo>& p = perf[i];
    if (p.status == CUDNN_STATUS_SUCCESS && acceptable_algo(p.algo) && p.determinism == CUDNN_DETERMINISTIC &&
        p.mathType == CUDNN_FMA_MATH && p.memory <= kMaxWorkspace) {
      *out = p.algo;
      return true;
    }
  }
  return false;
}

Status handle_for(CudaBackend& b, cudnnHandle_t* out, const char* op) {
  const CudnnApi& api = *b.cudnn_api();
  ThreadWorkspace& ws = b.workspace();
  if (ws.cudnn == nullptr) {
    cudnnHandle_t h = nullptr;
    TEMPERED_CUDNN_TRY(api, op, cudnnCreate(&h));
    cudnnStatus_t st = api.cudnnSetStream(h, b.stream());
    if (st != CUDNN_STATUS_SUCCESS) {
      api.cudnnDestroy(h);
      return cudnn_fail(api, st, op, "cudnnSetStream");
    }
    ws.cudnn = h;
  }
  *out = static_cast<cudnnHandle_t>(ws.cudnn);
  return Status::Ok();
}

// Fills in a new plan; p->usable says whether cuDNN can run the shape our way.
Status build_plan(const CudnnApi& api, cudnnHandle_t h, const Conv3x3Shape& s, const char* op, Plan* p) {
  TEMPERED_CUDNN_TRY(api, op, cudnnCreateTensorDescriptor(&p->x));
  TEMPERED_CUDNN_TRY(api, op, cudnnCreateTensorDescriptor(&p->y));
  TEMPERED_CUDNN_TRY(api, op, cudnnCreateFilterDescriptor(&p->w));
  TEMPERED_CUDNN_TRY(api, op, cudnnCreateConvolutionDescriptor(&p->conv));
  TEMPERED_CUDNN_TRY(
      api, op, cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.in_c, s.in_h, s.in_w));
  TEMPERED_CUDNN_TRY(
      api, op,
      cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, s.n, s.out_c, s.out_h(), s.out_w()));
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, s.out_c, s.in_c, 3, 3));
  TEMPERED_CUDNN_TRY(
      api, op, cudnnSetConvolution2dDescriptor(p->conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  TEMPERED_CUDNN_TRY(api, op, cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));

  int returned = 0;
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, fwd));
  if (!pick(fwd, returned, &p->fwd)) {
    p->problem = "cuDNN offers no deterministic FMA implicit-GEMM forward algorithm";
    return Status::Ok();
  }
  cudnnConvolutionBwdDataAlgoPerf_t bd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x,
                                                                 CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, bd));
  if (!pick(bd, returned, &p->bwd_data)) {
    p->problem = "cuDNN offers no deterministic FMA ALGO_1 backward-data algorithm";
    return Status::Ok();
  }
  cudnnConvolutionBwdFilterAlgoPerf_t bf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                         h, p->x, p->y, p->conv, p->w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, bf));
  if (!pick(bf, returned, &p->bwd_filter)) {
    p->problem = "cuDNN offers no deterministic FMA ALGO_1 backward-filter algorithm";
    return Status::Ok();
  }
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y, p->fwd, &p->fwd_bytes));
  TEMPERED_CUDNN_TRY(
      api, op,
      cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x, p->bwd_data, &p->bwd_data_bytes));
  TEMPERED_CUDNN_TRY(api, op,
                     cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w, p->bwd_filter,
                                                                    &p->bwd_filter_bytes));
  p->usable = true;
  return Status::Ok();
}

// The plan for a shape (kept even when unusable, so the question is asked once per shape
// while it stays in the cache).
Status plan_for(CudaBackend& b, const Conv3x3Shape& s, const char* op, std::shared_ptr<Plan>* out) {
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  const PlanKey key = std::make_tuple(s.n, s.in_h, s.in_w, s.in_c, s.out_c);
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  for (auto it = g_plans.begin(); it != g_plans.end(); ++it)
    if (it->first == key) {
      g_plans.splice(g_plans.begin(), g_plans, it);
      *out = g_plans.front().second;
      return Status::Ok();
    }
  auto p = std::make_shared<Plan>();
  p->api = b.cudnn_api();
  Status st = build_plan(*p->api, h, s, op, p.get());
  if (!st.ok()) return st;  // a library error: the caller turns cuDNN off for this operation
  g_plans.emplace_front(key, p);
  while (g_plans.size() > kMaxPlans) g_plans.pop_back();
  *out = p;
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

}  // namespace

bool cudnn_ready(CudaBackend& b, std::string* problem) {
  std::shared_ptr<Plan> p;
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

void cudnn_release(CudaBackend& b, ThreadWorkspace& ws) {
  if (ws.cudnn != nullptr) b.cudnn_api()->cudnnDestroy(static_cast<cudnnHandle_t>(ws.cudnn));
  ws.cudnn = nullptr;
}

Status cudnn_conv3x3_forward(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* weight,
                             const float* bias, float* y, bool relu, bool* done) {
  const char* op = "conv3x3_forward (cuDNN)";
  *done = false;
  std::shared_ptr<Plan> p;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  float* w = nullptr;
  TEMPERED_TRY(krsc_weights(b, s, weight, op, &w));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->fwd_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(
      *p->api, op,
      cudnnConvolutionForward(h, &one, p->x, x, p->w, w, p->conv, p->fwd, ws, p->fwd_bytes, &zero, p->y, y));
  TEMPERED_TRY(add_bias(b, op, y, static_cast<size_t>(s.n) * s.out_h() * s.out_w(), s.out_c, bias, relu));
  *done = true;
  return Status::Ok();
}

Status cudnn_conv3x3_backward_data(CudaBackend& b, const Conv3x3Shape& s, const float* dy, const float* weight,
                                   float* dx, bool* done) {
  const char* op = "conv3x3_backward_data (cuDNN)";
  *done = false;
  std::shared_ptr<Plan> p;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  float* w = nullptr;
  TEMPERED_TRY(krsc_weights(b, s, weight, op, &w));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->bwd_data_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(*p->api, op,
                     cudnnConvolutionBackwardData(h, &one, p->w, w, p->y, dy, p->conv, p->bwd_data, ws,
                                                  p->bwd_data_bytes, &zero, p->x, dx));
  *done = true;
  return Status::Ok();
}

Status cudnn_conv3x3_backward_weights(CudaBackend& b, const Conv3x3Shape& s, const float* x, const float* dy,
                                      float* dweight, bool* done) {
  const char* op = "conv3x3_backward_weights (cuDNN)";
  *done = false;
  std::shared_ptr<Plan> p;
  TEMPERED_TRY(plan_for(b, s, op, &p));
  if (!p->usable) return Status::Ok();
  cudnnHandle_t h = nullptr;
  TEMPERED_TRY(handle_for(b, &h, op));
  void* krsc = nullptr;
  TEMPERED_TRY(b.scratch(kScratchWeights, sizeof(float) * 9 * static_cast<size_t>(s.in_c) * s.out_c, &krsc, op));
  void* ws = nullptr;
  TEMPERED_TRY(workspace_for(b, p->bwd_filter_bytes, op, &ws));
  const float one = 1.0f, zero = 0.0f;
  TEMPERED_CUDNN_TRY(*p->api, op,
                     cudnnConvolutionBackwardFilter(h, &one, p->x, x, p->y, dy, p->conv, p->bwd_filter, ws,
                                                    p->bwd_filter_bytes, &zero, p->w, krsc));
  TEMPERED_TRY(unpack_conv_weights_krsc(b, op, static_cast<const float*>(krsc), s.out_c, s.in_c, dweight));
  *done = true;
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
