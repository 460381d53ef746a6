// AVX-512 kernels for the lattice i-quants (iqgrid_avx512.inc) built with VBMI + GFNI: 7-bit sign
// fields to bytes by vpmultishiftqb, their parity bit by vgf2p8affineqb. Only called where cpu_features().avx512_vbmi_gfni (iqgrid_avx512.cpp).
#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx512 {
namespace {
constexpr bool kVbmiGfni = true;
#include "experts/kernels/iqgrid_avx512.inc"
}  // namespace

RowKernels iqgrid_kernels_vbmi(GgmlType t) { return iqgrid_table(t); }

}  // namespace tandem::experts::avx512
