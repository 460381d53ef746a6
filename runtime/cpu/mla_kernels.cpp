#include "runtime/cpu/mla_kernels.h"

#include <cstring>

#include "runtime/cpu/row_ops.h"

namespace tandem::cpu {

void mla_scores_generic(const MlaKernelArgs& a, const float* q, float scale, float* scores) {
  for (int64_t h = 0; h < a.n_heads; ++h)
    for (int64_t p = 0; p < a.n_rows; ++p) {
      const float* row = a.rows + p * a.width;
      const float* qh = q + h * a.width;
      float acc = 0;
      for (int64_t i = 0; i < a.width; ++i) acc += row[i] * qh[i];
      scores[h * a.stride + p] = scale * acc;
    }
}

void mla_values_generic(const MlaKernelArgs& a, const float* probs, int64_t n_out, float* out) {
  std::memset(out, 0, size_t(a.n_heads * n_out) * sizeof(float));
  for (int64_t p = 0; p < a.n_rows; ++p)
    for (int64_t h = 0; h < a.n_heads; ++h) axpy(n_out, probs[h * a.stride + p], a.rows + p * a.width, out + h * n_out);
}

void softmax_rows_generic(float* x, int64_t n_heads, int64_t n, int64_t stride) {
  for (int64_t h = 0; h < n_heads; ++h) softmax_inplace(x + h * stride, n);
}

}  // namespace tandem::cpu
