// AVX-512 kernels for the lattice i-quants (iqgrid_avx512.inc): the plain build, and the one place
// that picks the VBMI + GFNI build (iqgrid_avx512_vbmi.cpp) where the CPU has both.
#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx512 {
namespace {
constexpr bool kVbmiGfni = false;
#include "experts/kernels/iqgrid_avx512.inc"
}  // namespace

RowKernels iqgrid_kernels_plain(GgmlType t) { return iqgrid_table(t); }

RowKernels iqgrid_kernels(GgmlType t) {
  return cpu_features().avx512_vbmi_gfni ? iqgrid_kernels_vbmi(t) : iqgrid_table(t);
}

}  // namespace tandem::experts::avx512
