// Which SIMD instruction set the expert kernels run on: detected once from CPUID, overridable
// with TANDEM_CPU_ISA=scalar|avx2|avx512|amx (to test or compare paths). Amx is avx512 plus AMX
// tiles (INT8 and BF16) for experts with many tokens (kernels/amx_layer.h); decode-sized work
// keeps the avx512 row kernels.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tandem::experts {

enum class CpuIsa { Scalar = 0, Avx2 = 1, Avx512 = 2, Amx = 3 };

struct CpuFeatures {
  bool avx2_fma_f16c = false;  // AVX2 + FMA + F16C: the avx2 path
  // F + BW + VL + DQ + VNNI (Ice Lake, Zen 4 and later): the avx512 path. Skylake-X, which
  // lacks VNNI, runs the avx2 path.
  bool avx512 = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  // AVX512-VBMI + GFNI on an avx512 CPU (Ice Lake, Zen 4, Sapphire Rapids; not Cascade Lake): the
  // avx512 i-quant kernels' sign unpacking by vpmultishiftqb + vgf2p8affineqb (iqgrid_avx512_vbmi.cpp).
  bool avx512_vbmi_gfni = false;
  // AMX-TILE + AMX-INT8 + AMX-BF16 on an avx512 CPU, with XCR0 enabling the tile state
  // (Sapphire Rapids and later). The process still needs the kernel's permission: amx_permission_error().
  bool amx = false;
};

const CpuFeatures& cpu_features();
// Linux hands out the AMX tile state only on request (arch_prctl ARCH_REQ_XCOMP_PERM with
// XFEATURE_XTILEDATA); asked once per process. Empty when granted, else why not.
const std::string& amx_permission_error();
CpuIsa best_cpu_isa();                 // the widest path this CPU runs
bool cpu_supports(CpuIsa isa);  // Amx: the CPU has it and the kernel granted the tile state
// best_cpu_isa(), or TANDEM_CPU_ISA when set; throws Error when it names an unknown or
// unsupported ISA (for amx: also when the kernel refuses the tile state permission).
CpuIsa selected_cpu_isa();
std::string_view cpu_isa_name(CpuIsa isa);
std::optional<CpuIsa> cpu_isa_from_name(std::string_view name);

}  // namespace tandem::experts
