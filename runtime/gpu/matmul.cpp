#include "runtime/gpu/matmul.h"

#include <algorithm>
#include <string>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"
#include "runtime/gpu/matmul_tiled.h"

namespace tandem::gpu {

namespace {
struct MatMulPush {
  uint32_t K, rows, row_bytes, w_byte0, n_cols, x_col_stride, x_group_rows, x_group_stride, y_col_stride, y_row0,
      x_row0, accumulate, x0, y0, rows_per_wg;
};
constexpr uint32_t kWorkgroup = 64;
constexpr uint32_t kMaxGroupsX = 65535;

// Columns decoded weights are reused for: as many as there are, up to 16, in a few variants.
uint32_t columns_per_pass(uint32_t n_cols) {
  for (uint32_t c : {1u, 2u, 4u, 8u})
    if (n_cols <= c) return c;
  return 16;
}
}  // namespace

const char* gpu_weight_type_suffix(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return "f32";
    case GgmlType::F16: return "f16";
    case GgmlType::BF16: return "bf16";
    case GgmlType::Q8_0: return "q8_0";
    case GgmlType::Q4_0: return "q4_0";
    case GgmlType::Q4_1: return "q4_1";
    case GgmlType::Q5_0: return "q5_0";
    case GgmlType::Q5_1: return "q5_1";
    case GgmlType::Q2_K: return "q2_k";
    case GgmlType::Q3_K: return "q3_k";
    case GgmlType::Q4_K: return "q4_k";
    case GgmlType::Q5_K: return "q5_k";
    case GgmlType::Q6_K: return "q6_k";
    default: fail("GPU kernels do not read weight type ", ggml_type_name(type));
  }
}

bool matmul_supports(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q2_K: case GgmlType::Q3_K:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: return true;
    default: return false;
  }
}

void record_matmul(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const GpuSpan& y, uint32_t n_cols,
                   const MatMulLayout& layout) {
  auto& dev = seq.device();
  const auto& info = dev.info();
  const uint32_t block = uint32_t(ggml_type_info(w.type).block_size);
  if (w.cols == 0 || w.cols % block)
    fail("GPU matmul: ", w.cols, " columns is not a multiple of the ", ggml_type_name(w.type), " block size ", block);
  const uint32_t x_stride = layout.x_col_stride ? layout.x_col_stride : w.cols;
  const uint32_t y_stride = layout.y_col_stride ? layout.y_col_stride : w.rows;
  const uint32_t group_rows = layout.x_group_rows ? layout.x_group_rows : w.rows;
  const uint64_t groups = (uint64_t(w.rows) + group_rows - 1) / group_rows;
  const uint64_t x_need = (uint64_t(n_cols) - 1) * x_stride + (groups - 1) * layout.x_group_stride + w.cols;
  const uint64_t y_need = (uint64_t(n_cols) - 1) * y_stride + w.rows;
  if (n_cols == 0) return;
  if (x.size < x_need * 4) fail("GPU matmul: input span of ", x.size, " bytes, need ", x_need * 4);
  if (y.size < y_need * 4) fail("GPU matmul: output span of ", y.size, " bytes, need ", y_need * 4);
  if (layout.allow_tiled && n_cols >= tiled_matmul_min_cols(info) && tiled_matmul_serves(w, layout))
    return record_matmul_tiled(seq, w, x, y, n_cols, layout);  // prefill: weights decoded once per tile

  const bool subgroup = layout.allow_subgroup && info.subgroup_in_compute && info.subgroup_arithmetic &&
                        info.subgroup_size >= 4 && info.subgroup_size <= kWorkgroup;
  PipelineSpec spec;
  spec.shader = std::string("matmul_") + gpu_weight_type_suffix(w.type) + (subgroup ? "_subgroup" : "");
  spec.bindings = 3;
  spec.push_constant_bytes = sizeof(MatMulPush);
  spec.constants = {kWorkgroup, columns_per_pass(n_cols)};
  const auto& pipe = dev.pipeline(spec);
  // Subgroup variant: one subgroup per row, so a workgroup covers WG / subgroup_size rows.
  const uint32_t rows_per_wg = subgroup ? std::max<uint32_t>(1, kWorkgroup / info.subgroup_size) : 1;
  const FloatBinding xb = bind_words(info, x, "matmul input");
  const FloatBinding yb = bind_words(info, y, "matmul output");

  for (const auto& range : split_rows(w, info.max_storage_buffer_range, info.min_storage_buffer_offset_alignment)) {
    MatMulPush p{w.cols, range.rows, uint32_t(w.row_bytes()), range.byte0, n_cols, x_stride, group_rows,
                 layout.x_group_stride, y_stride, range.row0, range.row0, layout.accumulate ? 1u : 0u,
                 xb.first, yb.first, rows_per_wg};
    const uint32_t groups = (range.rows + rows_per_wg - 1) / rows_per_wg;
    const uint32_t gx = std::min(groups, kMaxGroupsX);
    const uint32_t gy = (groups + gx - 1) / gx;
    seq.dispatch(pipe, {range.binding, xb.binding, yb.binding}, p, gx, gy, 1, spec.shader);
  }
}

}  // namespace tandem::gpu
