// Matrix-vector and small-batch matrix-matrix product with quantized weights read directly
// (F32, F16, BF16: any length; Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS): y[c][r] = sum_k W[r][k] * x[c][k].
// Shader: shaders/matmul.comp (one SPIR-V variant per type, plain and subgroup-reduced).
#pragma once

#include <cstdint>
#include <string>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/gpu_weight.h"

namespace tandem::gpu {

struct MatMulLayout {
  uint32_t x_col_stride = 0;    // floats between input columns; 0: W.cols
  uint32_t y_col_stride = 0;    // floats between output columns; 0: W.rows
  // Per-head weights (MLA absorption): rows [g*x_group_rows, (g+1)*x_group_rows) read the x
  // segment starting at g*x_group_stride. 0: every row reads the whole column.
  uint32_t x_group_rows = 0;
  uint32_t x_group_stride = 0;
  bool accumulate = false;      // y += W x
  bool allow_subgroup = true;   // use subgroupAdd when the device has it
  // Decode-shaped K-quant products (n_cols <= kMatvecMaxCols, Q2_K..Q6_K) use matvec_kquant.comp;
  // false: the generic kernel (for comparisons).
  bool allow_kquant_matvec = true;
  // ... with x quantized to int8 blocks and packed 4x8 dot products when the device has
  // shaderIntegerDotProduct (1.3-2x faster on H100). Opt-in for now: on the generated
  // more_heads_other_ranks model it moves the GPU logits from 0.04 to 0.14 relative L2 off the
  // reference (test limit 0.1), not yet explained; false: F32 x unless TANDEM_GPU_INT_DOT=1.
  bool allow_int_dot = false;
  bool allow_tiled = true;      // from tiled_matmul_min_cols() columns on, the tiled GEMM (matmul_tiled.h)
};

bool matmul_supports(GgmlType type);

// Most input columns the decode-shaped K-quant kernel serves per product.
constexpr uint32_t kMatvecMaxCols = 8;
// The decode-shaped K-quant kernel record_matmul would use for this product
// ("matvec_q4_k_int8_subgroup", ...), or "" when it would use another: for tests and benchmarks.
std::string kquant_matvec_kernel(const GpuDevice& dev, const GpuWeight& w, const GpuSpan& x, uint32_t n_cols,
                                 const MatMulLayout& layout = {});

// x and y are F32 spans; n_cols input columns. Records one dispatch per bindable row range.
void record_matmul(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const GpuSpan& y, uint32_t n_cols,
                   const MatMulLayout& layout = {});

// The shader name suffix for a weight type ("q4_k"); throws Error for types without a kernel.
const char* gpu_weight_type_suffix(GgmlType type);

}  // namespace tandem::gpu
