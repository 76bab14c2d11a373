// sweep: Algorithm 2's 2 x 784 perturbed losses per image, by brute force on the device.
//
// The candidates that need a forward pass (not skipped, pixel not already at the target)
// are listed on the host as (image, candidate) pairs; a kernel writes the perturbed images
// from the device copy of the originals, 1,568 at a time, and they go through the same
// forward operations as every other pass (so each loss equals a full forward pass on this
// backend); the attack loss of each is computed on the device in double. Pixels already at
// the target get exactly the base loss, skipped pixels NaN.
#include <vector>

#include "cuda_backend.h"
#include "tempered/attack_loss.h"
#include "tempered/network_shape.h"

namespace tempered {
namespace cuda {

namespace {

using namespace net;

constexpr int kChunk = 1568;  // perturbed images per forward pass
constexpr int kCandidates = 2 * kPixels;
constexpr int kA1 = 26 * 26 * 32, kA2 = 24 * 24 * 32, kP1 = 12 * 12 * 32, kA3 = 10 * 10 * 64, kA4 = 8 * 8 * 64,
              kP2 = 4 * 4 * 64;

struct SweepBuffers {
  float *x, *a1, *a2, *p1, *a3, *a4, *p2, *flat, *h1, *h2, *z;
  uint8_t *arg1, *arg2;
};

size_t round256(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Lays the buffers out in one block of scratch memory; returns the bytes needed.
size_t carve(char* base, SweepBuffers* b) {
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* p = base != nullptr ? base + off : nullptr;
    off += round256(bytes);
    return p;
  };
  const size_t m = kChunk;
  b->x = reinterpret_cast<float*>(take(sizeof(float) * m * kPixels));
  b->a1 = reinterpret_cast<float*>(take(sizeof(float) * m * kA1));
  b->a2 = reinterpret_cast<float*>(take(sizeof(float) * m * kA2));
  b->p1 = reinterpret_cast<float*>(take(sizeof(float) * m * kP1));
  b->a3 = reinterpret_cast<float*>(take(sizeof(float) * m * kA3));
  b->a4 = reinterpret_cast<float*>(take(sizeof(float) * m * kA4));
  b->p2 = reinterpret_cast<float*>(take(sizeof(float) * m * kP2));
  b->flat = reinterpret_cast<float*>(take(sizeof(float) * m * kFlatFeatures));
  b->h1 = reinterpret_cast<float*>(take(sizeof(float) * m * kHidden));
  b->h2 = reinterpret_cast<float*>(take(sizeof(float) * m * kHidden));
  b->z = reinterpret_cast<float*>(take(sizeof(float) * m * kClasses));
  b->arg1 = reinterpret_cast<uint8_t*>(take(m * kP1));
  b->arg2 = reinterpret_cast<uint8_t*>(take(m * kP2));
  return off;
}

// x[j] = the original image of work item j with its pixel set to the target.
__global__ void perturb_kernel(const float* images, const int32_t* work, int count, float* x) {
  const size_t total = static_cast<size_t>(count) * kPixels;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t j = i / kPixels;
    const int q = static_cast<int>(i - j * kPixels);
    const int image = work[2 * j], candidate = work[2 * j + 1];
    const int p = candidate % kPixels;
    x[i] = q == p ? (candidate < kPixels ? 1.0f : 0.0f) : images[static_cast<size_t>(image) * kPixels + q];
  }
}

__global__ void base_loss_kernel(const float* z, const int32_t* labels, int n, LossSpec spec, double* out) {
  for (size_t i = grid_index(); i < static_cast<size_t>(n); i += grid_stride())
    out[i] = attack_loss(z + i * kClasses, kClasses, labels[i], spec, nullptr);
}

// Every entry: NaN when skipped, the base loss when the pixel is already at the target,
// NaN for now otherwise (scatter_loss_kernel fills those in).
__global__ void fill_kernel(const float* images, const uint8_t* skip, const double* base, int n, double* losses) {
  const size_t total = static_cast<size_t>(n) * kCandidates;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const size_t image = i / kCandidates;
    const int candidate = static_cast<int>(i - image * kCandidates);
    const int p = candidate % kPixels;
    const float target = candidate < kPixels ? 1.0f : 0.0f;
    const bool skipped = skip != nullptr && skip[image * kPixels + p] != 0;
    losses[i] = !skipped && images[image * kPixels + p] == target ? base[image] : nan("");
  }
}

__global__ void scatter_loss_kernel(const float* z, const int32_t* work, const int32_t* labels, int count,
                                    LossSpec spec, double* losses) {
  for (size_t j = grid_index(); j < static_cast<size_t>(count); j += grid_stride()) {
    const int image = work[2 * j], candidate = work[2 * j + 1];
    losses[static_cast<size_t>(image) * kCandidates + candidate] =
        attack_loss(z + j * kClasses, kClasses, labels[image], spec, nullptr);
  }
}

// The network's deterministic forward pass (no dropout) of m <= kChunk images; logits in b.z.
Status forward(CudaBackend& be, const float* params, const float* x, int m, const SweepBuffers& b) {
  auto p = [&](int id) { return params + kParams[id].offset; };
  auto shape = [&](const ConvLayer& l) { return Conv3x3Shape{m, l.in_h, l.in_w, l.in_c, l.out_c}; };
  TEMPERED_TRY(be.conv3x3_forward(shape(kConv1), x, p(kConv1W), p(kConv1B), b.a1, true));
  TEMPERED_TRY(be.conv3x3_forward(shape(kConv2), b.a1, p(kConv2W), p(kConv2B), b.a2, true));
  TEMPERED_TRY(be.maxpool2x2_forward(m, 24, 24, 32, b.a2, b.p1, b.arg1));
  TEMPERED_TRY(be.conv3x3_forward(shape(kConv3), b.p1, p(kConv3W), p(kConv3B), b.a3, true));
  TEMPERED_TRY(be.conv3x3_forward(shape(kConv4), b.a3, p(kConv4W), p(kConv4B), b.a4, true));
  TEMPERED_TRY(be.maxpool2x2_forward(m, 8, 8, 64, b.a4, b.p2, b.arg2));
  TEMPERED_TRY(be.hwc_to_chw(m, 4, 4, 64, b.p2, b.flat));
  TEMPERED_TRY(be.dense_forward({m, kFlatFeatures, kHidden}, b.flat, p(kFc1W), p(kFc1B), b.h1, true));
  TEMPERED_TRY(be.dense_forward({m, kHidden, kHidden}, b.h1, p(kFc2W), p(kFc2B), b.h2, true));
  return be.dense_forward({m, kHidden, kClasses}, b.h2, p(kFc3W), p(kFc3B), b.z, false);
}

}  // namespace

Status CudaBackend::sweep(const SweepArgs& a) {
  const char* op = "sweep";
  TEMPERED_TRY(healthy(op));
  if (a.n <= 0) return Status::Ok();
  const size_t n = static_cast<size_t>(a.n);

  SweepBuffers buf;
  const size_t bytes = carve(nullptr, &buf);
  void* block = nullptr;
  TEMPERED_TRY(scratch(kScratchSweep, bytes, &block, op));
  carve(static_cast<char*>(block), &buf);

  // Base losses, kChunk images at a time.
  for (int first = 0; first < a.n; first += kChunk) {
    const int m = imin(kChunk, a.n - first);
    TEMPERED_TRY(forward(*this, a.params, a.images + static_cast<size_t>(first) * kPixels, m, buf));
    TEMPERED_TRY(launch(op, base_loss_kernel, dim3(blocks_for(m, 128)), dim3(128), static_cast<const float*>(buf.z),
                        a.labels + first, m, a.spec, a.base_losses + first));
  }
  TEMPERED_TRY(launch(op, fill_kernel, dim3(blocks_for(n * kCandidates)), dim3(kThreads), a.images, a.skip,
                      static_cast<const double*>(a.base_losses), a.n, a.losses));

  // The work list, from host copies of the images and the skip mask.
  std::vector<float> images(n * kPixels);
  std::vector<uint8_t> skip;
  TEMPERED_TRY(download(images.data(), a.images, sizeof(float) * images.size()));
  if (a.skip != nullptr) {
    skip.resize(n * kPixels);
    TEMPERED_TRY(download(skip.data(), a.skip, skip.size()));
  }
  std::vector<int32_t> work;
  work.reserve(n * kCandidates);
  for (size_t i = 0; i < n; ++i)
    for (int candidate = 0; candidate < kCandidates; ++candidate) {
      const int p = candidate % kPixels;
      const float target = candidate < kPixels ? 1.0f : 0.0f;
      if (!skip.empty() && skip[i * kPixels + p] != 0) continue;
      if (images[i * kPixels + p] == target) continue;
      work.push_back(static_cast<int32_t>(i));
      work.push_back(candidate);
    }
  const int count = static_cast<int>(work.size() / 2);
  if (count == 0) return Status::Ok();
  void* work_dev = nullptr;
  TEMPERED_TRY(scratch(kScratchSweepWork, sizeof(int32_t) * work.size(), &work_dev, op));
  TEMPERED_TRY(upload(work_dev, work.data(), sizeof(int32_t) * work.size()));
  const int32_t* work_d = static_cast<const int32_t*>(work_dev);

  for (int start = 0; start < count; start += kChunk) {
    const int m = imin(kChunk, count - start);
    const int32_t* w = work_d + 2 * static_cast<size_t>(start);
    TEMPERED_TRY(launch(op, perturb_kernel, dim3(blocks_for(static_cast<size_t>(m) * kPixels)), dim3(kThreads),
                        a.images, w, m, buf.x));
    TEMPERED_TRY(forward(*this, a.params, buf.x, m, buf));
    TEMPERED_TRY(launch(op, scatter_loss_kernel, dim3(blocks_for(m, 128)), dim3(128), static_cast<const float*>(buf.z),
                        w, a.labels, m, a.spec, a.losses));
  }
  // The work list's host memory is staged by the upload; nothing here outlives the call.
  return Status::Ok();
}

}  // namespace cuda
}  // namespace tempered
