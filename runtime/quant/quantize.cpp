// quantize_row: plain float types here, quantized families in quantize_legacy.cpp,
// quantize_kquants.cpp, quantize_iq4.cpp,
// quantize_iq_grid.cpp and quantize_ternary.cpp.
#include "runtime/quant/quantize.h"

#include <cmath>
#include <cstring>

#include "runtime/core/error.h"

#include "runtime/core/half.h"
#include "runtime/quant/row_codecs.h"
#include "runtime/quant/row_geometry.h"

namespace tandem {

bool quantize_uses_importance(GgmlType type) {
  switch (type) {
    case GgmlType::IQ4_NL: case GgmlType::IQ4_XS: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S: case GgmlType::IQ3_XXS: case GgmlType::IQ3_S: case GgmlType::IQ1_S:
    case GgmlType::IQ1_M: case GgmlType::TQ1_0: case GgmlType::TQ2_0:
      return true;
    default: return false;
  }
}

void quantize_row(GgmlType type, const float* src, void* dst, int64_t n, const float* importance) {
  constexpr std::string_view kWhat = "quantize_row";
  using namespace row_codecs;
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
  // Block formats cannot represent inf/nan, and one would poison the whole block's scale.
  if (ggml_type_is_quantized(type))
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(src[i]))
        fail(kWhat, ": element ", i, " is ", src[i], ", not finite; type ", ggml_type_name(type),
             " cannot encode it");
  if (importance && quantize_uses_importance(type))
    for (int64_t i = 0; i < n; ++i)
      if (!(importance[i] >= 0.0f) || !std::isfinite(importance[i]))
        fail(kWhat, ": importance ", i, " is ", importance[i], "; importance weights must be finite and >= 0");
  switch (type) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t bits = f32_to_f16(src[i]);
        std::memcpy(static_cast<uint8_t*>(dst) + 2 * i, &bits, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t bits = f32_to_bf16(src[i]);
        std::memcpy(static_cast<uint8_t*>(dst) + 2 * i, &bits, 2);
      }
      return;
    case GgmlType::Q4_0: return quantize_q4_0(src, dst, nblocks);
    case GgmlType::Q4_1: return quantize_q4_1(src, dst, nblocks);
    case GgmlType::Q5_0: return quantize_q5_0(src, dst, nblocks);
    case GgmlType::Q5_1: return quantize_q5_1(src, dst, nblocks);
    case GgmlType::Q8_0: return quantize_q8_0(src, dst, nblocks);
    case GgmlType::Q2_K: return quantize_q2_k(src, dst, nblocks);
    case GgmlType::Q3_K: return quantize_q3_k(src, dst, nblocks);
    case GgmlType::Q4_K: return quantize_q4_k(src, dst, nblocks);
    case GgmlType::Q5_K: return quantize_q5_k(src, dst, nblocks);
    case GgmlType::Q6_K: return quantize_q6_k(src, dst, nblocks);
    case GgmlType::Q8_K: return quantize_q8_k(src, dst, nblocks);
    case GgmlType::IQ4_NL: return quantize_iq4_nl(src, dst, nblocks, importance);
    case GgmlType::IQ4_XS: return quantize_iq4_xs(src, dst, nblocks, importance);
    case GgmlType::IQ2_XXS: return quantize_iq2_xxs(src, dst, nblocks, importance);
    case GgmlType::IQ2_XS: return quantize_iq2_xs(src, dst, nblocks, importance);
    case GgmlType::IQ2_S: return quantize_iq2_s(src, dst, nblocks, importance);
    case GgmlType::IQ3_XXS: return quantize_iq3_xxs(src, dst, nblocks, importance);
    case GgmlType::IQ3_S: return quantize_iq3_s(src, dst, nblocks, importance);
    case GgmlType::IQ1_S: return quantize_iq1_s(src, dst, nblocks, importance);
    case GgmlType::IQ1_M: return quantize_iq1_m(src, dst, nblocks, importance);
    case GgmlType::TQ1_0: return quantize_tq1_0(src, dst, nblocks, importance);
    case GgmlType::TQ2_0: return quantize_tq2_0(src, dst, nblocks, importance);
    default: fail_unsupported(kWhat, type);
  }
}

}  // namespace tandem
