// Compiled once per instruction set (see simd.h): this copy's KernelTable.
#include "kernels.h"
#include "simd.h"

namespace tempered {
namespace cpu {
namespace TEMPERED_ISA_NS {

void conv3x3_window(const ConvWindow& a, int image, int oy0, int oy1, int ox0, int ox1);
void conv3x3_full_row(const ConvFull& a, int image, int y);
void conv3x3_backward_data_1ch(int h, int w, int k, const float* dy_padded, const float* flipped_w, float* dx,
                               int image);
void conv3x3_weight_grad_tile(const ConvWeightGrad& a, int n0, int n1, int tap, int c0, int c_count, int k0,
                              int k_count, float* out);
void winograd_f2x2_block(const WinogradArgs& a, int64_t tile0, int count, float* v, float* m);
void dense_forward_block(const DenseArgs& s, const float* x, const float* w, const float* b, float* y, bool relu,
                         int n0, int n1, int o0, int o1);
void dense_backward_data_block(const DenseArgs& s, const float* dy, const float* w, float* dx, int n0, int n1, int i0,
                               int i1);
void dense_backward_weights_block(const DenseArgs& s, const float* x, const float* dy, float* dw, int o0, int o1,
                                  int i0, int i1);
double fma_peak(int64_t iterations);
void dropout_block(const DropoutKey& key, const float* x, float* y, int64_t begin, int64_t end);

extern const KernelTable kTable = {
    kIsaName,
    kLanes,
    &conv3x3_window,
    &conv3x3_full_row,
    &conv3x3_backward_data_1ch,
    &conv3x3_weight_grad_tile,
    &winograd_f2x2_block,
    &dense_forward_block,
    &dense_backward_data_block,
    &dense_backward_weights_block,
    &dropout_block,
    &fma_peak,
};

}  // namespace TEMPERED_ISA_NS
}  // namespace cpu
}  // namespace tempered
