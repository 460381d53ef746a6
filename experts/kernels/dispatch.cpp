#include "experts/kernels/row_dot.h"
#include "runtime/core/error.h"

namespace tandem::experts {

RowDotFn row_dot_kernel(GgmlType type, CpuIsa isa) {
  if (!cpu_supports(isa)) fail("CPU ISA ", cpu_isa_name(isa), ": not supported by this CPU");
  RowDotFn (*const tables[3][3])(GgmlType) = {
      {scalar::kquant_row_dot, scalar::legacy_row_dot, scalar::float_row_dot},
      {avx2::kquant_row_dot, avx2::legacy_row_dot, avx2::float_row_dot},
      {avx512::kquant_row_dot, avx512::legacy_row_dot, avx512::float_row_dot},
  };
  for (auto table : tables[int(isa)])
    if (RowDotFn f = table(type)) return f;
  fail("weight type ", ggml_type_name(type), ": no ", cpu_isa_name(isa), " expert kernel");
}

}  // namespace tandem::experts
