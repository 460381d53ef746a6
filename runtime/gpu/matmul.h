// Matrix-vector and small-batch matrix-matrix product with quantized weights read directly
// (F32, F16, BF16: any length; Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K): y[c][r] = sum_k W[r][k] * x[c][k].
// Shader: shaders/matmul.comp (one SPIR-V variant per type, plain and subgroup-reduced).
#pragma once

#include <cstdint>

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
  bool allow_tiled = true;      // from tiled_matmul_min_cols() columns on, the tiled GEMM (matmul_tiled.h)
};

bool matmul_supports(GgmlType type);

// x and y are F32 spans; n_cols input columns. Records one dispatch per bindable row range.
void record_matmul(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const GpuSpan& y, uint32_t n_cols,
                   const MatMulLayout& layout = {});

// The shader name suffix for a weight type ("q4_k"); throws Error for types without a kernel.
const char* gpu_weight_type_suffix(GgmlType type);

}  // namespace tandem::gpu
