// The inner loops of MLA attention over fp32 latent cache rows (mla_attention.cpp), for a group
// of heads of one query token against a run of cache rows. The avx512 versions are register
// blocked (4 rows x 4 heads of scores, 4 heads x 64 columns of values in zmm accumulators), so
// each cache row is loaded once per 4 heads instead of once per head; the generic versions are
// the plain loops they are tested against.
#pragma once

#include <cstdint>

namespace tandem::cpu {

struct MlaKernelArgs {
  const float* rows = nullptr;  // n_rows cache rows, `width` floats apart
  int64_t n_rows = 0, width = 0;
  int64_t n_heads = 0;          // heads in the group
  int64_t stride = 0;           // floats between two heads' score rows (>= n_rows)
};

// scores[h * stride + p] = scale * dot(q[h * width ...], rows[p]) over `width` values.
void mla_scores_generic(const MlaKernelArgs& a, const float* q, float scale, float* scores);
// out[h * n_out + c] = sum_p probs[h * stride + p] * rows[p][c] for c < n_out (overwritten).
void mla_values_generic(const MlaKernelArgs& a, const float* probs, int64_t n_out, float* out);
// x = softmax(x) for each of n_heads rows of n values, stride apart.
void softmax_rows_generic(float* x, int64_t n_heads, int64_t n, int64_t stride);

namespace avx512 {
void mla_scores(const MlaKernelArgs& a, const float* q, float scale, float* scores);
void mla_values(const MlaKernelArgs& a, const float* probs, int64_t n_out, float* out);
void softmax_rows(float* x, int64_t n_heads, int64_t n, int64_t stride);
}  // namespace avx512

}  // namespace tandem::cpu
