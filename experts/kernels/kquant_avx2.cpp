// AVX2 K-quant kernels: maddubs (u8 weights x s8 activations) then madd with the int16 group
// scales, accumulated in int32 per super-block and in fp32 across super-blocks.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx2 {
namespace {

// Activations per pass over the row: each decoded block is used this many times.
constexpr int kActsPerPass = 4;

template <class Unpack>
void dot_kquant_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const typename Unpack::Block*>(w);
  for (int a0 = 0; a0 < n_acts; a0 += kActsPerPass) {
    const int na = n_acts - a0 < kActsPerPass ? n_acts - a0 : kActsPerPass;
    __m256 acc[kActsPerPass];
    for (auto& v : acc) v = _mm256_setzero_ps();
    KBlockParts p;
    for (int64_t i = 0; i < n / 256; ++i) {
      Unpack::unpack(blocks[i], p);
      __m256i sc[8];
      for (int c = 0; c < 8; ++c) sc[c] = _mm256_set_m128i(_mm_set1_epi16(p.scale[2 * c + 1]), _mm_set1_epi16(p.scale[2 * c]));
      for (int j = 0; j < na; ++j) {
        const ActBlockQ8K& a = static_cast<const ActBlockQ8K*>(acts[a0 + j])[i];
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 8; ++c) {
          const __m256i prod = _mm256_maddubs_epi16(p.q[c], load256(a.qs + 32 * c));
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(prod, sc[c]));
        }
        const __m256i bsums = load256(a.bsums);
        if constexpr (Unpack::kOffset != 0) {
          const __m256i corr = _mm256_madd_epi16(bsums, load256(p.scale));
          isum = _mm256_sub_epi32(isum, _mm256_mullo_epi32(corr, _mm256_set1_epi32(Unpack::kOffset)));
        }
        acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * p.d), _mm256_cvtepi32_ps(isum), acc[j]);
        if constexpr (Unpack::kHasMin) {
          const __m256i msum = _mm256_madd_epi16(bsums, load256(p.min));
          acc[j] = _mm256_fnmadd_ps(_mm256_set1_ps(a.d * p.dmin), _mm256_cvtepi32_ps(msum), acc[j]);
        }
      }
    }
    for (int j = 0; j < na; ++j) out[a0 + j] = hsum256(acc[j]);
  }
}

template <class Unpack>
float dot_kquant(int64_t n, const void* w, const void* act) {
  float r;
  dot_kquant_many<Unpack>(n, w, &act, 1, &r);
  return r;
}

}  // namespace

RowKernels kquant_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return {dot_kquant<Q2KUnpack>, dot_kquant_many<Q2KUnpack>};
    case GgmlType::Q3_K: return {dot_kquant<Q3KUnpack>, dot_kquant_many<Q3KUnpack>};
    case GgmlType::Q4_K: return {dot_kquant<Q4KUnpack>, dot_kquant_many<Q4KUnpack>};
    case GgmlType::Q5_K: return {dot_kquant<Q5KUnpack>, dot_kquant_many<Q5KUnpack>};
    case GgmlType::Q6_K: return {dot_kquant<Q6KUnpack>, dot_kquant_many<Q6KUnpack>};
    default: return {};
  }
}

}  // namespace tandem::experts::avx2
