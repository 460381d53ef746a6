#include "runtime/model/reference_ops.h"

#include <cblas.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/quant/dequantize.h"

namespace tandem {
namespace {
constexpr int64_t kRowChunk = 64;  // rows dequantized together before one sgemm
}

void reference_row(const WeightMatrix& w, int64_t r, float* out) {
  dequantize_row(w.type, w.row(r), out, w.cols);
}

void reference_matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  const int64_t chunks = (w.rows + kRowChunk - 1) / kRowChunk;
  tbb::parallel_for(int64_t(0), chunks, [&](int64_t c) {
    const int64_t r0 = c * kRowChunk;
    const int64_t nr = std::min(kRowChunk, w.rows - r0);
    std::vector<float> tile(size_t(nr * w.cols));
    for (int64_t r = 0; r < nr; ++r) reference_row(w, r0 + r, tile.data() + r * w.cols);
    // y[t, r0 + r] = sum_k x[t, k] * tile[r, k]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n_tokens), int(nr), int(w.cols), 1.0f, x,
                int(w.cols), tile.data(), int(w.cols), 0.0f, y + r0, int(w.rows));
  });
}

void reference_matmul_transposed(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  std::vector<float> full(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) reference_row(w, r, full.data() + r * w.cols);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n_tokens), int(w.cols), int(w.rows), 1.0f, x,
              int(w.rows), full.data(), int(w.cols), 0.0f, y, int(w.cols));
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void softmax_inplace(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  for (int64_t i = 0; i < n; ++i) x[i] = float(x[i] / sum);
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace tandem
