// Single-expert references for tests and the integrator: the scalar-kernel path (same activation
// quantization as the engine) and a plain fp32 path from the scalar dequantizer.
#include <cmath>
#include <vector>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/row_dot.h"
#include "experts/moe_engine.h"
#include "runtime/core/error.h"
#include "runtime/quant/dequantize.h"

namespace tandem {

using namespace experts;

namespace {

float silu(float v) { return v / (1.0f + std::exp(-v)); }

void check_expert(const MoeLayerWeights& w, int64_t expert) {
  if (expert < 0 || expert >= w.n_experts) fail("expert ", expert, ": out of range 0..", w.n_experts - 1);
}

int64_t matrix_bytes(GgmlType t, int64_t rows, int64_t cols) { return rows * int64_t(ggml_row_bytes(t, uint64_t(cols))); }

}  // namespace

void run_expert_scalar(const MoeLayerWeights& w, int64_t expert, const float* x, float* out) {
  check_expert(w, expert);
  const ActFormat ga = activation_format(w.gate_type), ua = activation_format(w.up_type),
                  da = activation_format(w.down_type);
  const RowDotFn gdot = row_dot_kernel(w.gate_type, CpuIsa::Scalar), udot = row_dot_kernel(w.up_type, CpuIsa::Scalar),
                 ddot = row_dot_kernel(w.down_type, CpuIsa::Scalar);
  AlignedBuffer xg, xu, hq;
  xg.reserve(size_t(activation_row_bytes(ga, w.hidden)));
  xu.reserve(size_t(activation_row_bytes(ua, w.hidden)));
  hq.reserve(size_t(activation_row_bytes(da, w.ffn)));
  quantize_activation_row(ga, x, xg.as(), w.hidden);
  quantize_activation_row(ua, x, xu.as(), w.hidden);
  const int64_t grow = int64_t(ggml_row_bytes(w.gate_type, uint64_t(w.hidden)));
  const int64_t urow = int64_t(ggml_row_bytes(w.up_type, uint64_t(w.hidden)));
  const int64_t drow = int64_t(ggml_row_bytes(w.down_type, uint64_t(w.ffn)));
  const uint8_t* g = w.gate + expert * grow * w.ffn;
  const uint8_t* u = w.up + expert * urow * w.ffn;
  const uint8_t* d = w.down + expert * drow * w.hidden;
  std::vector<float> h(size_t(w.ffn));
  for (int64_t r = 0; r < w.ffn; ++r)
    h[size_t(r)] = silu(gdot(w.hidden, g + r * grow, xg.as())) * udot(w.hidden, u + r * urow, xu.as());
  quantize_activation_row(da, h.data(), hq.as(), w.ffn);
  for (int64_t r = 0; r < w.hidden; ++r) out[r] = ddot(w.ffn, d + r * drow, hq.as());
}

void run_expert_f32(const MoeLayerWeights& w, int64_t expert, const float* x, float* out) {
  check_expert(w, expert);
  const uint8_t* g = w.gate + expert * matrix_bytes(w.gate_type, w.ffn, w.hidden);
  const uint8_t* u = w.up + expert * matrix_bytes(w.up_type, w.ffn, w.hidden);
  const uint8_t* d = w.down + expert * matrix_bytes(w.down_type, w.hidden, w.ffn);
  const int64_t grow = int64_t(ggml_row_bytes(w.gate_type, uint64_t(w.hidden)));
  const int64_t urow = int64_t(ggml_row_bytes(w.up_type, uint64_t(w.hidden)));
  const int64_t drow = int64_t(ggml_row_bytes(w.down_type, uint64_t(w.ffn)));
  std::vector<float> row(size_t(std::max(w.hidden, w.ffn))), h(size_t(w.ffn));
  auto dot = [](const float* a, const float* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(a[i]) * b[i];
    return float(s);
  };
  for (int64_t r = 0; r < w.ffn; ++r) {
    dequantize_row(w.gate_type, g + r * grow, row.data(), w.hidden);
    const float gv = dot(row.data(), x, w.hidden);
    dequantize_row(w.up_type, u + r * urow, row.data(), w.hidden);
    h[size_t(r)] = silu(gv) * dot(row.data(), x, w.hidden);
  }
  for (int64_t r = 0; r < w.hidden; ++r) {
    dequantize_row(w.down_type, d + r * drow, row.data(), w.ffn);
    out[r] = dot(row.data(), h.data(), w.ffn);
  }
}

}  // namespace tandem
