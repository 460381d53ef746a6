#include <cmath>
#include <cstring>

#include "experts/activation_blocks.h"
#include "runtime/core/error.h"

namespace tandem::experts {
namespace {

// Scale so that the largest magnitude maps to 127; returns 1/scale (0 for an all-zero block).
float block_inverse_scale(const float* x, int n, float* d) {
  float amax = 0;
  for (int i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  *d = amax / 127.0f;
  return amax > 0 ? 127.0f / amax : 0.0f;
}

void quantize_q8k(const float* x, ActBlockQ8K* out, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 256) {
    ActBlockQ8K& o = out[b];
    const float id = block_inverse_scale(x, 256, &o.d);
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int q = int(std::nearbyint(x[i] * id));
        o.qs[i] = int8_t(q);
        sum += q;
      }
      o.bsums[g] = int16_t(sum);
    }
  }
}

void quantize_q8(const float* x, ActBlockQ8* out, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += 32) {
    ActBlockQ8& o = out[b];
    const float id = block_inverse_scale(x, 32, &o.d);
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = int(std::nearbyint(x[i] * id));
      o.qs[i] = int8_t(q);
      sum += q;
    }
    o.sum = sum;
  }
}

}  // namespace

ActFormat activation_format(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
    case GgmlType::IQ4_XS:
    case GgmlType::IQ2_XXS:
    case GgmlType::IQ2_XS:
    case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S:
    case GgmlType::IQ1_S:
    case GgmlType::IQ1_M:
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0: return ActFormat::Q8K;
    case GgmlType::Q4_0:
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL: return ActFormat::Q8;
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::F32: return ActFormat::F32;
    default: break;
  }
  fail("weight type ", ggml_type_name(t), ": the CPU expert engine has no kernel for it");
}

int64_t activation_block_elems(ActFormat f) {
  switch (f) {
    case ActFormat::Q8K: return 256;
    case ActFormat::Q8: return 32;
    case ActFormat::F32: return 1;
  }
  return 1;
}

int64_t activation_row_bytes(ActFormat f, int64_t n) {
  switch (f) {
    case ActFormat::Q8K: return n / 256 * int64_t(sizeof(ActBlockQ8K));
    case ActFormat::Q8: return n / 32 * int64_t(sizeof(ActBlockQ8));
    case ActFormat::F32: return n * 4;
  }
  return 0;
}

void quantize_activation_row(ActFormat f, const float* x, void* dst, int64_t n) {
  if (n % activation_block_elems(f) != 0)
    fail("activation row of ", n, " elements: not a multiple of ", activation_block_elems(f));
  switch (f) {
    case ActFormat::Q8K: quantize_q8k(x, static_cast<ActBlockQ8K*>(dst), n / 256); break;
    case ActFormat::Q8: quantize_q8(x, static_cast<ActBlockQ8*>(dst), n / 32); break;
    case ActFormat::F32: std::memcpy(dst, x, size_t(n) * 4); break;
  }
}

}  // namespace tandem::experts
