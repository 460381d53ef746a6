// Dot product of one weight row (as stored in GGUF) with one activation row in the format
// activation_format(type) names. One kernel family per file and ISA; row_dot_kernel() in
// dispatch.cpp is the one place that picks among them.
#pragma once

#include <cstdint>

#include "experts/cpu_isa.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::experts {

// n: row length in elements (a multiple of the type's block size).
using RowDotFn = float (*)(int64_t n, const void* weight_row, const void* activation_row);
// The same row against n_acts activation rows: out[j] = dot(weight_row, acts[j]). Each weight
// block is decoded once for several activations, which is what makes multi-token decode and
// prefill cheaper per token than one token.
using RowDotManyFn = void (*)(int64_t n, const void* weight_row, const void* const* acts, int n_acts, float* out);

struct RowKernels {
  RowDotFn one = nullptr;
  RowDotManyFn many = nullptr;
};

// Throws Error for a type without kernels or an ISA this build or CPU cannot run.
RowDotFn row_dot_kernel(GgmlType type, CpuIsa isa);
RowDotManyFn row_dot_many_kernel(GgmlType type, CpuIsa isa);
RowKernels row_kernels(GgmlType type, CpuIsa isa);

// Per-family tables: empty RowKernels for types outside the family.
namespace scalar {
RowKernels kquant_kernels(GgmlType t);
RowKernels legacy_kernels(GgmlType t);
RowKernels float_kernels(GgmlType t);
RowKernels iq4_kernels(GgmlType t);  // IQ4_NL, IQ4_XS
// IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, TQ1_0, TQ2_0 (codebook and ternary types);
// dispatch falls back to these on ISAs whose table lacks a type.
RowKernels iqgrid_kernels(GgmlType t);
}  // namespace scalar
namespace avx2 {
RowKernels kquant_kernels(GgmlType t);
RowKernels legacy_kernels(GgmlType t);
RowKernels float_kernels(GgmlType t);
RowKernels iq4_kernels(GgmlType t);  // IQ4_NL, IQ4_XS
RowKernels iqgrid_kernels(GgmlType t);  // IQ1_S, IQ1_M, IQ2_XXS/XS/S, IQ3_XXS/S
}  // namespace avx2
namespace avx512 {
RowKernels kquant_kernels(GgmlType t);
RowKernels legacy_kernels(GgmlType t);
RowKernels float_kernels(GgmlType t);
RowKernels iq4_kernels(GgmlType t);  // IQ4_NL, IQ4_XS
RowKernels iqgrid_kernels(GgmlType t);  // IQ1_S, IQ1_M, IQ2_XXS/XS/S, IQ3_XXS/S
// Its two builds, for tests: plain, and with VBMI + GFNI (only where cpu_features().avx512_vbmi_gfni);
// iqgrid_kernels picks one.
RowKernels iqgrid_kernels_plain(GgmlType t);
RowKernels iqgrid_kernels_vbmi(GgmlType t);
}  // namespace avx512

}  // namespace tandem::experts
