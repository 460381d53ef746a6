#include "runtime/gpu/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
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

// Decode-shaped K-quant kernel (matvec_kquant.comp): how it would serve a product, if it does.
struct MatvecPush {
  uint32_t K, rows, row_bytes, w_byte0, n_cols, x_col_stride, x_group_rows, x_group_stride, y_col_stride, y_row0,
      x_row0, accumulate, x0, y0;
};
struct QuantizeX8Push {
  uint32_t blocks_per_segment, segments, blocks, x_col_stride, x_segment_stride, x0;
};
constexpr uint32_t kMatvecWorkgroup = 128;

struct MatvecPlan {
  std::string shader;  // empty: not served
  uint32_t threads_per_row = 0;
  bool int8 = false;
};

// TANDEM_GPU_INT_DOT=1 turns the int8 x path on for every product (models record their matmuls
// with default layouts): for accuracy and speed checks of whole models until it is the default.
bool int_dot_requested() {
  return knobs::flag("TANDEM_GPU_INT_DOT");
}

bool is_kquant(GgmlType t) {
  return t == GgmlType::Q2_K || t == GgmlType::Q3_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K ||
         t == GgmlType::Q6_K;
}

MatvecPlan plan_kquant_matvec(const GpuDeviceInfo& info, const GpuWeight& w, uint32_t x_first, uint32_t x_stride,
                              uint32_t group_stride, uint32_t n_cols, const MatMulLayout& layout) {
  MatvecPlan plan;
  if (!layout.allow_kquant_matvec || !is_kquant(w.type) || n_cols == 0 || n_cols > kMatvecMaxCols) return plan;
  plan.int8 = (layout.allow_int_dot || int_dot_requested()) && info.int_dot_product;
  // F32 x is read as vec4: every column and segment must start at a multiple of 4 floats.
  if (!plan.int8 && (x_first % 4 || x_stride % 4 || group_stride % 4)) return plan;
  // Q4_K/Q5_K blocks (144/176 bytes) are read as uvec4: rows must start 16-byte aligned.
  if (w.type == GgmlType::Q4_K || w.type == GgmlType::Q5_K) {
    if (info.min_storage_buffer_offset_alignment % 16) return plan;
    for (const auto& r : split_rows(w, info.max_storage_buffer_range, info.min_storage_buffer_offset_alignment))
      if (r.byte0 % 16 || r.binding.offset % 16) return plan;
  }
  const bool subgroup = layout.allow_subgroup && info.subgroup_in_compute && info.subgroup_arithmetic &&
                        info.subgroup_size >= 4 && info.subgroup_size <= kMatvecWorkgroup;
  // Threads per row: up to 32 (one subgroup), fewer for short rows so each thread gets >= 4 chunks
  // (shuffle reductions need the shuffle feature; without it a row takes a whole subgroup).
  const uint32_t chunks = w.cols / 256 * ((w.type == GgmlType::Q4_K || w.type == GgmlType::Q5_K) ? 8 : 4);
  uint32_t tpr = subgroup ? std::min<uint32_t>(info.subgroup_size, 32) : 32;
  const uint32_t max_tpr = tpr;
  if (!subgroup || info.subgroup_shuffle) {
    while (tpr > 4 && chunks < 4 * tpr) tpr /= 2;
    // Small matrices (decode: 576-3072 rows) are latency-bound: give each row more threads (down
    // to 2 chunks each) until the product has ~64 K threads in flight (132 SMs x 512). Large ones
    // (7168 x 7168: 224 chunks a row) keep 32 threads of >= 7 chunks.
    while (tpr < max_tpr && uint64_t(w.rows) * tpr < 65536 && chunks >= 4 * tpr) tpr *= 2;
  }
  if (subgroup && !info.subgroup_shuffle) tpr = info.subgroup_size;
  plan.threads_per_row = tpr;
  plan.shader = std::string("matvec_") + gpu_weight_type_suffix(w.type) + (plan.int8 ? "_int8" : "") +
                (subgroup ? "_subgroup" : "");
  return plan;
}

void record_kquant_matvec(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const FloatBinding& xb,
                          const FloatBinding& yb, uint32_t n_cols, uint32_t x_stride, uint32_t y_stride,
                          uint32_t group_rows, uint32_t groups, const MatMulLayout& layout, const MatvecPlan& plan) {
  auto& dev = seq.device();
  const auto& info = dev.info();
  const uint32_t seg_blocks = w.cols / 32;
  GpuSpan xq, xd;
  if (plan.int8) {
    // x once to int8 blocks: 32 bytes of values + 16 of scale and half sums per 32 values.
    const uint64_t blocks = uint64_t(n_cols) * groups * seg_blocks;
    const uint64_t align = std::max<uint64_t>(256, info.min_storage_buffer_offset_alignment);
    const uint64_t q_bytes = (blocks * 32 + align - 1) / align * align;
    const GpuSpan scratch = seq.scratch(q_bytes + blocks * 16, "matvec int8 x");
    xq = scratch.sub(0, blocks * 32);
    xd = scratch.sub(q_bytes, blocks * 16);
    PipelineSpec qspec;
    qspec.shader = "quantize_x8";
    qspec.bindings = 3;
    qspec.push_constant_bytes = sizeof(QuantizeX8Push);
    const auto& qpipe = dev.pipeline(qspec);
    const FloatBinding xin = bind_words(info, x, "matvec input");
    const QuantizeX8Push qp{seg_blocks, groups, uint32_t(blocks), x_stride, layout.x_group_stride, xin.first};
    const uint32_t wgs = uint32_t((blocks + 63) / 64);
    const uint32_t gx = std::min(wgs, kMaxGroupsX);
    seq.dispatch(qpipe, {xin.binding, xq, xd}, qp, gx, (wgs + gx - 1) / gx, 1, "quantize_x8");
  }
  PipelineSpec spec;
  spec.shader = plan.shader;
  spec.bindings = plan.int8 ? 4 : 3;
  spec.push_constant_bytes = sizeof(MatvecPush);
  spec.constants = {kMatvecWorkgroup, columns_per_pass(n_cols), plan.threads_per_row};
  const auto& pipe = dev.pipeline(spec);
  const uint32_t rows_per_wg = kMatvecWorkgroup / plan.threads_per_row;
  // int8 x is packed: columns of `groups` segments of seg_blocks blocks, from block 0.
  const uint32_t xs = plan.int8 ? groups * seg_blocks : x_stride;
  const uint32_t gs = plan.int8 ? seg_blocks : layout.x_group_stride;
  for (const auto& range : split_rows(w, info.max_storage_buffer_range, info.min_storage_buffer_offset_alignment)) {
    const MatvecPush p{w.cols, range.rows, uint32_t(w.row_bytes()), range.byte0, n_cols, xs, group_rows, gs,
                       y_stride, range.row0, range.row0, layout.accumulate ? 1u : 0u, plan.int8 ? 0u : xb.first,
                       yb.first};
    const uint32_t wgs = (range.rows + rows_per_wg - 1) / rows_per_wg;
    const uint32_t gx = std::min(wgs, kMaxGroupsX);
    const uint32_t gy = (wgs + gx - 1) / gx;
    if (plan.int8)
      seq.dispatch(pipe, {range.binding, xq, yb.binding, xd}, p, gx, gy, 1, spec.shader);
    else
      seq.dispatch(pipe, {range.binding, xb.binding, yb.binding}, p, gx, gy, 1, spec.shader);
  }
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
    case GgmlType::IQ4_NL: return "iq4_nl";
    case GgmlType::IQ4_XS: return "iq4_xs";
    case GgmlType::IQ1_S: return "iq1_s";
    case GgmlType::IQ1_M: return "iq1_m";
    case GgmlType::IQ2_XXS: return "iq2_xxs";
    case GgmlType::IQ2_XS: return "iq2_xs";
    case GgmlType::IQ2_S: return "iq2_s";
    case GgmlType::IQ3_XXS: return "iq3_xxs";
    case GgmlType::IQ3_S: return "iq3_s";
    default: fail("GPU kernels do not read weight type ", ggml_type_name(type));
  }
}

bool matmul_supports(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q2_K: case GgmlType::Q3_K:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_NL: case GgmlType::IQ4_XS:
    case GgmlType::IQ1_S: case GgmlType::IQ1_M: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS: case GgmlType::IQ3_S:
      return true;
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

  const FloatBinding xb = bind_words(info, x, "matmul input");
  const FloatBinding yb = bind_words(info, y, "matmul output");
  const MatvecPlan plan = plan_kquant_matvec(info, w, xb.first, x_stride, layout.x_group_stride, n_cols, layout);
  if (!plan.shader.empty())
    return record_kquant_matvec(seq, w, x, xb, yb, n_cols, x_stride, y_stride, group_rows, uint32_t(groups), layout,
                                plan);

  const bool subgroup = layout.allow_subgroup && info.subgroup_in_compute && info.subgroup_arithmetic &&
                        info.subgroup_size >= 4 && info.subgroup_size <= kWorkgroup;
  PipelineSpec spec;
  spec.shader = std::string("matmul_") + gpu_weight_type_suffix(w.type) + (subgroup ? "_subgroup" : "");
  spec.bindings = 3;
  spec.codebook = w.type;
  spec.push_constant_bytes = sizeof(MatMulPush);
  spec.constants = {kWorkgroup, columns_per_pass(n_cols)};
  const auto& pipe = dev.pipeline(spec);
  // Subgroup variant: one subgroup per row, so a workgroup covers WG / subgroup_size rows.
  const uint32_t rows_per_wg = subgroup ? std::max<uint32_t>(1, kWorkgroup / info.subgroup_size) : 1;

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

namespace tandem::gpu {

std::string kquant_matvec_kernel(const GpuDevice& dev, const GpuWeight& w, const GpuSpan& x, uint32_t n_cols,
                                 const MatMulLayout& layout) {
  const auto& info = dev.info();
  const FloatBinding xb = bind_words(info, x, "matmul input");
  return plan_kquant_matvec(info, w, xb.first, layout.x_col_stride ? layout.x_col_stride : w.cols,
                            layout.x_group_stride, n_cols, layout)
      .shader;
}

}  // namespace tandem::gpu
