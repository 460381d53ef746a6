#include "runtime/gpu/matmul_tiled.h"

#include <algorithm>
#include <optional>
#include <string>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

namespace {
struct TiledPush {
  uint32_t K, rows, row_bytes, w_byte0, n_cols, x_col_stride, y_col_stride, y_row0, accumulate, x0, y0;
};
struct ColScalePush {
  uint32_t K, n_cols, x_col_stride, x0;
};
constexpr uint32_t kMaxGroups = 65535;
constexpr uint32_t kScaleWorkgroup = 256;

// record_matmul's column loop decodes W once per 16 columns; from 17 columns on it needs a second
// pass, and on the H100 the tiled kernel wins from there (16: loop 0.45 ms vs tiled 0.55 ms,
// 24: 1.32 vs 1.00 ms for 7168x7168 Q4_K; bench/README.md, GPU prefill).
constexpr uint32_t kTiledMinCols = 17;

// From this many columns Auto takes the cooperative kernel where the device has one (H100: ties
// the plain kernel within 3 % at 64 columns, 1.2-1.8x from 256 on; bench/README.md, GPU prefill);
// below, its 128-column tiles are mostly empty.
constexpr uint32_t kCooperativeMinCols = 64;

// The device's F16 x F16 -> F32 shape the cooperative kernel uses: 16x16x16 when offered, else
// the first that tiles a 64 x 64 block with 2 x 2 subgroups and steps of 32.
std::optional<CooperativeMatrixShape> cooperative_shape(const GpuDeviceInfo& info) {
  if (!info.cooperative_matrix_nv_feature || !info.float16_arith || info.subgroup_size == 0) return std::nullopt;
  std::optional<CooperativeMatrixShape> pick;
  for (const auto& s : info.cooperative_matrix_f16_shapes) {
    if (s.m == 0 || s.n == 0 || s.k == 0 || 32 % s.m || 32 % s.n || 32 % s.k) continue;
    if (s.m == 16 && s.n == 16 && s.k == 16) return s;
    if (!pick) pick = s;
  }
  return pick;
}

uint32_t or_default(uint32_t v, uint32_t d) { return v ? v : d; }
uint32_t ceil_div(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }
}  // namespace

bool tiled_matmul_cooperative_available(const GpuDeviceInfo& info) { return cooperative_shape(info).has_value(); }

uint32_t tiled_matmul_min_cols(const GpuDeviceInfo&) { return kTiledMinCols; }

TiledKernel tiled_matmul_auto_kernel(const GpuDeviceInfo& info, uint32_t n_cols) {
  return n_cols >= kCooperativeMinCols && tiled_matmul_cooperative_available(info) ? TiledKernel::Cooperative
                                                                                    : TiledKernel::Plain;
}

bool tiled_matmul_serves(const GpuWeight& w, const MatMulLayout& layout) {
  return layout.x_group_rows == 0 || layout.x_group_rows >= w.rows;
}

void record_matmul_tiled(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const GpuSpan& y,
                         uint32_t n_cols, const MatMulLayout& layout, const TiledMatMulOptions& options) {
  auto& dev = seq.device();
  const auto& info = dev.info();
  const char* suffix = gpu_weight_type_suffix(w.type);
  const uint32_t block = uint32_t(ggml_type_info(w.type).block_size);
  if (w.cols == 0 || w.cols % block)
    fail("GPU tiled matmul: ", w.cols, " columns is not a multiple of the ", ggml_type_name(w.type), " block size ",
         block);
  if (!tiled_matmul_serves(w, layout))
    fail("GPU tiled matmul: per-head x segments (x_group_rows ", layout.x_group_rows, " of ", w.rows,
         " rows) are not tiled; use record_matmul");
  const uint32_t x_stride = layout.x_col_stride ? layout.x_col_stride : w.cols;
  const uint32_t y_stride = layout.y_col_stride ? layout.y_col_stride : w.rows;
  if (n_cols == 0) return;
  const uint64_t x_need = (uint64_t(n_cols) - 1) * x_stride + w.cols;
  const uint64_t y_need = (uint64_t(n_cols) - 1) * y_stride + w.rows;
  if (x.size < x_need * 4) fail("GPU tiled matmul: input span of ", x.size, " bytes, need ", x_need * 4);
  if (y.size < y_need * 4) fail("GPU tiled matmul: output span of ", y.size, " bytes, need ", y_need * 4);

  const auto shape = cooperative_shape(info);
  const TiledKernel kernel =
      options.kernel == TiledKernel::Auto ? tiled_matmul_auto_kernel(info, n_cols) : options.kernel;
  const bool coop = kernel == TiledKernel::Cooperative;
  if (coop && !shape) fail("GPU tiled matmul: ", info.name, " has no usable cooperative matrix (NV, f16 -> f32)");

  PipelineSpec spec;
  spec.bindings = coop ? 4 : 3;
  spec.codebook = w.type;
  spec.push_constant_bytes = sizeof(TiledPush);
  uint32_t bm = 0, bn = 0, shared_bytes = 0, wg = 0;
  const uint32_t bk = or_default(options.bk, 32);
  if (bk % 32) fail("GPU tiled matmul: k step ", bk, " is not a multiple of 32");
  if (coop) {
    // 64 x 128 tiles, 2 x 4 subgroups of 32 x 32 (2 x 2 fragments), k steps of 32: the fastest shape
    // that fits 48 KiB of shared memory on the H100 (bench/README.md).
    bm = or_default(options.bm, 64);
    bn = or_default(options.bn, 128);
    const uint32_t sg_r = or_default(options.sg_r, 2), sg_c = or_default(options.sg_c, 4);
    if (bm % (sg_r * shape->m) || bn % (sg_c * shape->n) || bk % shape->k || shape->k % 4)
      fail("GPU tiled matmul: tile ", bm, "x", bn, "x", bk, " with ", sg_r, "x", sg_c, " subgroups does not fit the ",
           shape->m, "x", shape->n, "x", shape->k, " cooperative matrix");
    wg = sg_r * sg_c * info.subgroup_size;
    // Two stages of both F16 tiles (rows padded by 8 halves), the column scales, one staging
    // fragment per subgroup.
    shared_bytes = 2 * (bm + bn) * (bk + 8) * 2 + bn * 4 + sg_r * sg_c * shape->m * shape->n * 4;
    spec.shader = std::string("matmul_tiled_coopmat_") + suffix;
    spec.constants = {bm, bn, bk, shape->m, shape->n, shape->k, sg_r, sg_c, wg};
  } else {
    bm = or_default(options.bm, 64);
    bn = or_default(options.bn, 64);
    const uint32_t tm = or_default(options.tm, 4), tn = or_default(options.tn, 4);
    if (bm % tm || bn % tn) fail("GPU tiled matmul: tile ", bm, "x", bn, " is not a multiple of ", tm, "x", tn);
    wg = (bm / tm) * (bn / tn);
    shared_bytes = bk * (bm + 1 + bn + 1) * 4;
    spec.shader = std::string("matmul_tiled_") + suffix;
    spec.constants = {bm, bn, bk, tm, tn, wg};
  }
  if (wg > info.max_workgroup_invocations || shared_bytes > info.max_compute_shared_memory)
    fail("GPU tiled matmul: tile ", bm, "x", bn, "x", bk, " needs ", wg, " threads and ", shared_bytes,
         " bytes of shared memory; ", info.name, " allows ", info.max_workgroup_invocations, " and ",
         info.max_compute_shared_memory);
  const uint32_t col_groups = ceil_div(n_cols, bn);
  if (col_groups > kMaxGroups) fail("GPU tiled matmul: ", n_cols, " columns exceed ", kMaxGroups, " workgroups");

  const FloatBinding xb = bind_words(info, x, "tiled matmul input");
  const FloatBinding yb = bind_words(info, y, "tiled matmul output");
  GpuSpan scales;
  if (coop) {
    // Per-column power-of-two scales keep x / scale inside F16's range (matmul_tiled_colscale.comp).
    scales = seq.scratch(std::max<uint64_t>(uint64_t(n_cols) * 4, 256), "tiled matmul column scales");
    PipelineSpec sspec;
    sspec.shader = "matmul_tiled_colscale";
    sspec.bindings = 2;
    sspec.push_constant_bytes = sizeof(ColScalePush);
    sspec.constants = {kScaleWorkgroup};
    const ColScalePush sp{w.cols, n_cols, x_stride, xb.first};
    const uint32_t gx = std::min(n_cols, kMaxGroups);
    seq.dispatch(dev.pipeline(sspec), {xb.binding, scales}, sp, gx, ceil_div(n_cols, gx), 1, sspec.shader);
  }
  const auto& pipe = dev.pipeline(spec);
  for (const auto& range : split_rows(w, info.max_storage_buffer_range, info.min_storage_buffer_offset_alignment)) {
    const TiledPush p{w.cols, range.rows, uint32_t(w.row_bytes()), range.byte0, n_cols, x_stride, y_stride,
                      range.row0, layout.accumulate ? 1u : 0u, xb.first, yb.first};
    const uint32_t row_groups = ceil_div(range.rows, bm);
    if (row_groups > kMaxGroups) fail("GPU tiled matmul: ", range.rows, " rows exceed ", kMaxGroups, " workgroups");
    if (coop)
      seq.dispatch(pipe, {range.binding, xb.binding, yb.binding, scales}, p, row_groups, col_groups, 1, spec.shader);
    else
      seq.dispatch(pipe, {range.binding, xb.binding, yb.binding}, p, row_groups, col_groups, 1, spec.shader);
  }
}

}  // namespace tandem::gpu
