// Tiled matrix-matrix product for prefill (many input columns): y[c][r] (+)= sum_k W[r][k] * x[c][k]
// with W in any type record_matmul reads. A workgroup decodes a BM x BK weight tile once into
// shared memory and serves BN input columns from it (shaders/matmul_tiled.comp, F32 with register
// blocking, every device; shaders/matmul_tiled_coopmat.comp, F16 tiles on cooperative matrices with
// F32 accumulation where the device has VK_NV_cooperative_matrix, Auto's choice there from
// 64 columns on). record_matmul calls this from tiled_matmul_min_cols() columns on.
#pragma once

#include <cstdint>

#include "runtime/gpu/matmul.h"

namespace tandem::gpu {

enum class TiledKernel { Auto, Plain, Cooperative };

struct TiledMatMulOptions {
  TiledKernel kernel = TiledKernel::Auto;  // Auto: tiled_matmul_auto_kernel()
  // Tile shape (0: the kernel's default). bm/bn: weight rows / input columns per workgroup; bk: k per
  // step (a multiple of 32); tm/tn (plain): outputs per thread; sg_r/sg_c (cooperative): subgroups
  // along rows / columns.
  uint32_t bm = 0, bn = 0, bk = 0, tm = 0, tn = 0, sg_r = 0, sg_c = 0;
};

// Whether the device runs the cooperative-matrix variant (NV extension enabled, an F16 x F16 -> F32
// subgroup shape whose sides divide 32).
bool tiled_matmul_cooperative_available(const GpuDeviceInfo& info);

// The kernel Auto runs for n_cols columns: Cooperative where available and n_cols is large enough
// for its 64-column tiles to win (measured on the H100), else Plain.
TiledKernel tiled_matmul_auto_kernel(const GpuDeviceInfo& info, uint32_t n_cols);

// The column count from which record_matmul switches to the tiled kernels on this device.
uint32_t tiled_matmul_min_cols(const GpuDeviceInfo& info);

// Whether the tiled kernels serve this layout: every row reads the whole column (no per-head x
// segments of MLA absorption; those stay on record_matmul's column loop).
bool tiled_matmul_serves(const GpuWeight& w, const MatMulLayout& layout);

// Records the product (one column-scale dispatch for the cooperative variant, then one dispatch per
// bindable row range). Honours x_col_stride, y_col_stride and accumulate; allow_subgroup is ignored.
void record_matmul_tiled(CommandSequence& seq, const GpuWeight& w, const GpuSpan& x, const GpuSpan& y,
                         uint32_t n_cols, const MatMulLayout& layout = {}, const TiledMatMulOptions& options = {});

}  // namespace tandem::gpu
