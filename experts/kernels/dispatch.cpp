#include "experts/kernels/row_dot.h"
#include "runtime/core/error.h"

namespace tandem::experts {

RowKernels row_kernels(GgmlType type, CpuIsa isa) {
  if (!cpu_supports(isa)) fail("CPU ISA ", cpu_isa_name(isa), ": not supported by this CPU");
  // The first table of the row that has the type wins; a row ends with the scalar kernels of
  // the families whose SIMD versions are not written yet (TQ1_0, TQ2_0), so every type runs on
  // every ISA.
  RowKernels (*const tables[3][6])(GgmlType) = {
      {scalar::kquant_kernels, scalar::legacy_kernels, scalar::float_kernels, scalar::iq4_kernels,
       scalar::iqgrid_kernels, scalar::iqgrid_kernels},
      {avx2::kquant_kernels, avx2::legacy_kernels, avx2::float_kernels, avx2::iq4_kernels, avx2::iqgrid_kernels,
       scalar::iqgrid_kernels},
      {avx512::kquant_kernels, avx512::legacy_kernels, avx512::float_kernels, avx512::iq4_kernels,
       avx512::iqgrid_kernels, scalar::iqgrid_kernels},
  };
  // Amx runs the avx512 row kernels; its tiles serve only experts with many tokens (amx_layer.h).
  const int level = isa == CpuIsa::Amx ? int(CpuIsa::Avx512) : int(isa);
  for (auto table : tables[level]) {
    const RowKernels k = table(type);
    if (k.one && k.many) return k;
  }
  fail("weight type ", ggml_type_name(type), ": no ", cpu_isa_name(isa), " expert kernel");
}

RowDotFn row_dot_kernel(GgmlType type, CpuIsa isa) { return row_kernels(type, isa).one; }
RowDotManyFn row_dot_many_kernel(GgmlType type, CpuIsa isa) { return row_kernels(type, isa).many; }

}  // namespace tandem::experts
