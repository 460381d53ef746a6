// Plain fp32 operations of the reference forward pass. Weights are dequantized on the fly with
// the scalar oracle (runtime/quant/dequantize.h); products of dequantized tiles go through BLAS.
#pragma once

#include <cstdint>

#include "runtime/model/weight_matrix.h"

namespace tandem {

// y[t * w.rows + r] = dot(row r of w, x[t * w.cols ...]) for t < n_tokens.
void reference_matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);
// y[t * w.cols + c] = sum_r x[t * w.rows + r] * w[r][c]: the transposed product.
void reference_matmul_transposed(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);
// One dequantized row.
void reference_row(const WeightMatrix& w, int64_t r, float* out);

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
void softmax_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i]
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

}  // namespace tandem
