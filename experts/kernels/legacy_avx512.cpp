// AVX-512 kernels for the 32-element block types: vpdpbusd (VNNI, 256-bit) per block, fp32 accumulation.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/legacy_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

constexpr int kActsPerPass = 4;

template <class Unpack>
void dot_legacy_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const typename Unpack::Block*>(w);
  for (int a0 = 0; a0 < n_acts; a0 += kActsPerPass) {
    const int na = n_acts - a0 < kActsPerPass ? n_acts - a0 : kActsPerPass;
    __m256 acc[kActsPerPass];
    for (auto& v : acc) v = _mm256_setzero_ps();
    float bias_sum[kActsPerPass] = {};
    for (int64_t i = 0; i < n / 32; ++i) {
      float d, bias;
      const __m256i u = Unpack::unpack(blocks[i], &d, &bias);
      for (int j = 0; j < na; ++j) {
        const ActBlockQ8& a = static_cast<const ActBlockQ8*>(acts[a0 + j])[i];
        acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(dot_u8s8(u, load256(a.qs))), acc[j]);
        bias_sum[j] += bias * a.d * float(a.sum);
      }
    }
    for (int j = 0; j < na; ++j) out[a0 + j] = hsum256(acc[j]) + bias_sum[j];
  }
}

void dot_q8_0_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const BlockQ8_0*>(w);
  for (int a0 = 0; a0 < n_acts; a0 += kActsPerPass) {
    const int na = n_acts - a0 < kActsPerPass ? n_acts - a0 : kActsPerPass;
    __m256 acc[kActsPerPass];
    for (auto& v : acc) v = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; ++i) {
      const __m256i q = load256(blocks[i].qs);
      const __m256i aq = _mm256_abs_epi8(q);
      const float d = fp16_to_float(blocks[i].d);
      for (int j = 0; j < na; ++j) {
        const ActBlockQ8& a = static_cast<const ActBlockQ8*>(acts[a0 + j])[i];
        const __m256i s = _mm256_sign_epi8(load256(a.qs), q);  // moves q's sign onto a
        acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(dot_u8s8(aq, s)), acc[j]);
      }
    }
    for (int j = 0; j < na; ++j) out[a0 + j] = hsum256(acc[j]);
  }
}

template <class Unpack>
float dot_legacy(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const typename Unpack::Block*>(w);
  const auto* acts = static_cast<const ActBlockQ8*>(act);
  __m256 acc = _mm256_setzero_ps();
  float bias_sum = 0;
  for (int64_t i = 0; i < n / 32; ++i) {
    float d, bias;
    const __m256i u = Unpack::unpack(blocks[i], &d, &bias);
    const ActBlockQ8& a = acts[i];
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(dot_u8s8(u, load256(a.qs))), acc);
    bias_sum += bias * a.d * float(a.sum);
  }
  return hsum256(acc) + bias_sum;
}

float dot_q8_0(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockQ8_0*>(w);
  const auto* acts = static_cast<const ActBlockQ8*>(act);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / 32; ++i) {
    const __m256i q = load256(blocks[i].qs);
    const __m256i s = _mm256_sign_epi8(load256(acts[i].qs), q);  // moves q's sign onto a
    const __m256i p = dot_u8s8(_mm256_abs_epi8(q), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(fp16_to_float(blocks[i].d) * acts[i].d), _mm256_cvtepi32_ps(p), acc);
  }
  return hsum256(acc);
}

}  // namespace

RowKernels legacy_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return {dot_legacy<Q4_0Unpack>, dot_legacy_many<Q4_0Unpack>};
    case GgmlType::Q4_1: return {dot_legacy<Q4_1Unpack>, dot_legacy_many<Q4_1Unpack>};
    case GgmlType::Q5_0: return {dot_legacy<Q5_0Unpack>, dot_legacy_many<Q5_0Unpack>};
    case GgmlType::Q5_1: return {dot_legacy<Q5_1Unpack>, dot_legacy_many<Q5_1Unpack>};
    case GgmlType::Q8_0: return {dot_q8_0, dot_q8_0_many};
    default: return {};
  }
}

}  // namespace tandem::experts::avx512
