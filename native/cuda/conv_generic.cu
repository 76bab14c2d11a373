// The generic convolution of the CUDA backend: any odd kernel size (the network takes 3 and 5;
// 3 x 3 layers use the tiled kernels and cuDNN instead). One thread per output element, the
// taps in order, weights read in PyTorch's layout [K][C][k][k]; checked against the CPU's
// conv_generic.cpp operation by operation (native/cuda/emulation).
#include "conv_generic.cuh"

namespace tempered {
namespace cuda {

namespace {

// y[n][oy][ox][k] = b[k] + sum over (ky, kx, c) of x[n][oy + ky][ox + kx][c] w[k][c][ky][kx].
__global__ void conv_generic_forward_kernel(Conv3x3Shape s, const float* x, const float* weight, const float* bias,
                                            float* y, bool relu) {
  const int out_h = s.in_h - s.k + 1, out_w = s.in_w - s.k + 1,
            taps = s.k * s.k;  // (host methods are not callable here)
  const size_t total = static_cast<size_t>(s.n) * out_h * out_w * s.out_c;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int k = static_cast<int>(i % s.out_c);
    size_t rest = i / s.out_c;
    const int ox = static_cast<int>(rest % out_w);
    rest /= out_w;
    const int oy = static_cast<int>(rest % out_h);
    const size_t image = rest / out_h;
    float acc = bias[k];
    for (int ky = 0; ky < s.k; ++ky)
      for (int kx = 0; kx < s.k; ++kx) {
        const float* xp = x + ((image * s.in_h + oy + ky) * s.in_w + ox + kx) * s.in_c;
        const float* wk = weight + static_cast<size_t>(k) * s.in_c * taps + ky * s.k + kx;
        for (int c = 0; c < s.in_c; ++c) acc = fmaf(xp[c], wk[static_cast<size_t>(c) * taps], acc);
      }
    y[i] = relu && acc < 0.0f ? 0.0f : acc;
  }
}

// dx[n][row][col][c] = sum over the taps inside dy of dy[n][row - ky][col - kx][k] w[k][c][ky][kx].
__global__ void conv_generic_backward_data_kernel(Conv3x3Shape s, const float* dy, const float* weight, float* dx) {
  const int out_h = s.in_h - s.k + 1, out_w = s.in_w - s.k + 1,
            taps = s.k * s.k;  // (host methods are not callable here)
  const size_t total = static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c;
  for (size_t i = grid_index(); i < total; i += grid_stride()) {
    const int c = static_cast<int>(i % s.in_c);
    size_t rest = i / s.in_c;
    const int col = static_cast<int>(rest % s.in_w);
    rest /= s.in_w;
    const int row = static_cast<int>(rest % s.in_h);
    const size_t image = rest / s.in_h;
    float acc = 0.0f;
    for (int ky = 0; ky < s.k; ++ky) {
      const int oy = row - ky;
      if (oy < 0 || oy >= out_h) continue;
      for (int kx = 0; kx < s.k; ++kx) {
        const int ox = col - kx;
        if (ox < 0 || ox >= out_w) continue;
        const float* d = dy + ((image * out_h + oy) * out_w + ox) * s.out_c;
        for (int k = 0; k < s.out_c; ++k)
          acc = fmaf(d[k], weight[(static_cast<size_t>(k) * s.in_c + c) * taps + ky * s.k + kx], acc);
      }
    }
    dx[i] = acc;
  }
}

// dw[k][c][ky][kx] = sum over (n, oy, ox) of x[n][oy + ky][ox + kx][c] dy[n][oy][ox][k]; one
// thread per weight, and after them one per bias entry.
__global__ void conv_generic_backward_weights_kernel(Conv3x3Shape s, const float* x, const float* dy, float* dweight,
                                                     float* dbias) {
  const int out_h = s.in_h - s.k + 1, out_w = s.in_w - s.k + 1,
            taps = s.k * s.k;  // (host methods are not callable here)
  const size_t weights = static_cast<size_t>(s.out_c) * s.in_c * taps;
  for (size_t i = grid_index(); i < weights + s.out_c; i += grid_stride()) {
    float acc = 0.0f;
    if (i >= weights) {
      const int k = static_cast<int>(i - weights);
      for (size_t p = 0; p < static_cast<size_t>(s.n) * out_h * out_w; ++p) acc += dy[p * s.out_c + k];
      dbias[k] = acc;
      continue;
    }
    const int tap = static_cast<int>(i % taps), ky = tap / s.k, kx = tap % s.k;
    const int c = static_cast<int>((i / taps) % s.in_c), k = static_cast<int>(i / (static_cast<size_t>(taps) * s.in_c));
    for (int n = 0; n < s.n; ++n)
      for (int oy = 0; oy < out_h; ++oy)
        for (int ox = 0; ox < out_w; ++ox)
          acc = fmaf(x[((static_cast<size_t>(n) * s.in_h + oy + ky) * s.in_w + ox + kx) * s.in_c + c],
                     dy[((static_cast<size_t>(n) * out_h + oy) * out_w + ox) * s.out_c + k], acc);
    dweight[i] = acc;
  }
}

}  // namespace

Status conv_generic_forward(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* x, const float* weight,
                            const float* bias, float* y, bool relu) {
  const size_t total = static_cast<size_t>(s.n) * s.out_h() * s.out_w() * s.out_c;
  if (total == 0) return Status::Ok();
  return b.launch(op, conv_generic_forward_kernel, dim3(blocks_for(total)), dim3(kThreads), s, x, weight, bias, y,
                  relu);
}

Status conv_generic_backward_data(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* dy,
                                  const float* weight, float* dx) {
  const size_t total = static_cast<size_t>(s.n) * s.in_h * s.in_w * s.in_c;
  if (total == 0) return Status::Ok();
  return b.launch(op, conv_generic_backward_data_kernel, dim3(blocks_for(total)), dim3(kThreads), s, dy, weight, dx);
}

Status conv_generic_backward_weights(CudaBackend& b, const char* op, const Conv3x3Shape& s, const float* x,
                                     const float* dy, float* dweight, float* dbias) {
  const size_t total = static_cast<size_t>(s.out_c) * s.in_c * s.k * s.k + s.out_c;
  if (total == 0) return Status::Ok();
  return b.launch(op, conv_generic_backward_weights_kernel, dim3(blocks_for(total)), dim3(kThreads), s, x, dy, dweight,
                  dbias);
}

}  // namespace cuda
}  // namespace tempered
