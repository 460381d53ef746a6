// Which SIMD instruction set the expert kernels run on: detected once from CPUID, overridable
// with TANDEM_CPU_ISA=scalar|avx2|avx512 (to test or compare paths).
#pragma once

#include <optional>
#include <string_view>

namespace tandem::experts {

enum class CpuIsa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2_fma_f16c = false;  // AVX2 + FMA + F16C: the avx2 path
  // F + BW + VL + DQ + VNNI (Ice Lake, Zen 4 and later): the avx512 path. Skylake-X, which
  // lacks VNNI, runs the avx2 path.
  bool avx512 = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
};

const CpuFeatures& cpu_features();
CpuIsa best_cpu_isa();                 // the widest path this CPU runs
bool cpu_supports(CpuIsa isa);
// best_cpu_isa(), or TANDEM_CPU_ISA when set; throws Error when it names an unknown or
// unsupported ISA.
CpuIsa selected_cpu_isa();
std::string_view cpu_isa_name(CpuIsa isa);
std::optional<CpuIsa> cpu_isa_from_name(std::string_view name);

}  // namespace tandem::experts
