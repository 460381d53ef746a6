// dequantize_row: plain float types here, quantized families in dequantize_legacy.cpp,
// dequantize_kquants.cpp, dequantize_iq4.cpp,
// dequantize_iq_grid.cpp (lattice i-quants) and dequantize_ternary.cpp.
#include "runtime/quant/dequantize.h"

#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/row_codecs.h"
#include "runtime/quant/row_geometry.h"

namespace tandem {

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  constexpr std::string_view kWhat = "dequantize_row";
  using namespace row_codecs;
  // Unsupported types are rejected before the size check so the error names the real problem.
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q8_K: case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS: case GgmlType::IQ3_S: case GgmlType::IQ1_S: case GgmlType::IQ1_M:
    case GgmlType::TQ1_0: case GgmlType::TQ2_0:
      break;
    default:
      fail_unsupported(kWhat, type);
  }
  const int64_t nblocks = checked_block_count(kWhat, type, n);
  switch (type) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;  // memcpy: rows in a mapped file need not be 2-byte aligned
        std::memcpy(&bits, h + 2 * i, 2);
        dst[i] = f16_to_f32(bits);
      }
      return;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, h + 2 * i, 2);
        dst[i] = bf16_to_f32(bits);
      }
      return;
    }
    case GgmlType::Q4_0: return dequantize_q4_0(src, dst, nblocks);
    case GgmlType::Q4_1: return dequantize_q4_1(src, dst, nblocks);
    case GgmlType::Q5_0: return dequantize_q5_0(src, dst, nblocks);
    case GgmlType::Q5_1: return dequantize_q5_1(src, dst, nblocks);
    case GgmlType::Q8_0: return dequantize_q8_0(src, dst, nblocks);
    case GgmlType::Q2_K: return dequantize_q2_k(src, dst, nblocks);
    case GgmlType::Q3_K: return dequantize_q3_k(src, dst, nblocks);
    case GgmlType::Q4_K: return dequantize_q4_k(src, dst, nblocks);
    case GgmlType::Q5_K: return dequantize_q5_k(src, dst, nblocks);
    case GgmlType::Q6_K: return dequantize_q6_k(src, dst, nblocks);
    case GgmlType::Q8_K: return dequantize_q8_k(src, dst, nblocks);
    case GgmlType::IQ4_NL: return dequantize_iq4_nl(src, dst, nblocks);
    case GgmlType::IQ4_XS: return dequantize_iq4_xs(src, dst, nblocks);
    case GgmlType::IQ2_XXS: return dequantize_iq2_xxs(src, dst, nblocks);
    case GgmlType::IQ2_XS: return dequantize_iq2_xs(src, dst, nblocks);
    case GgmlType::IQ2_S: return dequantize_iq2_s(src, dst, nblocks);
    case GgmlType::IQ3_XXS: return dequantize_iq3_xxs(src, dst, nblocks);
    case GgmlType::IQ3_S: return dequantize_iq3_s(src, dst, nblocks);
    case GgmlType::IQ1_S: return dequantize_iq1_s(src, dst, nblocks);
    case GgmlType::IQ1_M: return dequantize_iq1_m(src, dst, nblocks);
    case GgmlType::TQ1_0: return dequantize_tq1_0(src, dst, nblocks);
    case GgmlType::TQ2_0: return dequantize_tq2_0(src, dst, nblocks);
    default: fail_unsupported(kWhat, type);
  }
}

}  // namespace tandem
