#include "experts/cpu_isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"

namespace tandem::experts {
namespace {

bool os_saves_avx512_state() {
  // XCR0 bits 1,2 (SSE/AVX) and 5,6,7 (opmask, ZMM hi256, hi16 ZMM) must all be enabled.
  uint32_t lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xE6) == 0xE6;
}

bool os_saves_avx_state() {
  uint32_t lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0x6) == 0x6;
}

bool os_saves_tile_state() {  // XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA)
  uint32_t lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0x60000) == 0x60000;
}

std::string request_amx_permission() {
  if (!cpu_features().amx) return "this CPU lacks AMX (amx_tile, amx_int8, amx_bf16)";
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
    return std::string("the kernel refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): ") +
           std::strerror(errno);
  return {};
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  const bool f16c = c & (1u << 29);
  if (!osxsave || !os_saves_avx_state()) return f;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = b & (1u << 5);
  f.avx2_fma_f16c = avx2 && fma && f16c;
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  f.avx512 = f.avx2_fma_f16c && avx512f && avx512dq && avx512bw && avx512vl && vnni &&
             os_saves_avx512_state();
  f.avx512_vnni = f.avx512;
  f.avx512_vbmi_gfni = f.avx512 && (c & (1u << 1)) && (c & (1u << 8));  // VBMI, GFNI
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = f.avx512 && (a1 & (1u << 5));
  const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  f.amx = f.avx512 && amx_tile && amx_int8 && amx_bf16 && os_saves_tile_state();
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const std::string& amx_permission_error() {
  static const std::string error = request_amx_permission();
  return error;
}

bool cpu_supports(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return true;
    case CpuIsa::Avx2: return cpu_features().avx2_fma_f16c;
    case CpuIsa::Avx512: return cpu_features().avx512;
    case CpuIsa::Amx: return cpu_features().amx && amx_permission_error().empty();
  }
  return false;
}

CpuIsa best_cpu_isa() {
  if (cpu_supports(CpuIsa::Amx)) return CpuIsa::Amx;
  if (cpu_supports(CpuIsa::Avx512)) return CpuIsa::Avx512;
  if (cpu_supports(CpuIsa::Avx2)) return CpuIsa::Avx2;
  return CpuIsa::Scalar;
}

CpuIsa selected_cpu_isa() {
  const auto name = knobs::text("TANDEM_CPU_ISA");
  if (!name) return best_cpu_isa();
  const auto isa = cpu_isa_from_name(*name);
  if (!isa) fail("TANDEM_CPU_ISA=", *name, ": unknown ISA (expected scalar, avx2, avx512 or amx)");
  if (*isa == CpuIsa::Amx && cpu_features().amx && !amx_permission_error().empty())
    fail("TANDEM_CPU_ISA=amx: ", amx_permission_error());
  if (!cpu_supports(*isa)) fail("TANDEM_CPU_ISA=", *name, ": this CPU does not support it");
  return *isa;
}

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return "scalar";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
    case CpuIsa::Amx: return "amx";
  }
  return "?";
}

std::optional<CpuIsa> cpu_isa_from_name(std::string_view name) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512, CpuIsa::Amx})
    if (cpu_isa_name(isa) == name) return isa;
  return std::nullopt;
}

}  // namespace tandem::experts
