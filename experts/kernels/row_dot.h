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

// Throws Error for a type without kernels or an ISA this build or CPU cannot run.
RowDotFn row_dot_kernel(GgmlType type, CpuIsa isa);

// Per-family tables: nullptr for types outside the family.
namespace scalar {
RowDotFn kquant_row_dot(GgmlType t);
RowDotFn legacy_row_dot(GgmlType t);
RowDotFn float_row_dot(GgmlType t);
}  // namespace scalar
namespace avx2 {
RowDotFn kquant_row_dot(GgmlType t);
RowDotFn legacy_row_dot(GgmlType t);
RowDotFn float_row_dot(GgmlType t);
}  // namespace avx2
namespace avx512 {
RowDotFn kquant_row_dot(GgmlType t);
RowDotFn legacy_row_dot(GgmlType t);
RowDotFn float_row_dot(GgmlType t);
}  // namespace avx512

}  // namespace tandem::experts
