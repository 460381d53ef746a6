// AVX-512 K-quant kernels: two 32-element chunks per zmm, maddubs then vpdpwssd (VNNI) with the
// int16 group scales broadcast per 128-bit lane by vpermw.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

// Own horizontal sum: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its header.
inline float reduce512(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// Lane k of pair c takes group scale 4c + k/8.
alignas(64) constexpr int16_t kScaleIndex[4][32] = {
#define TANDEM_ROW(c) {4*c,4*c,4*c,4*c,4*c,4*c,4*c,4*c, 4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1, \
                       4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2, 4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3}
    TANDEM_ROW(0), TANDEM_ROW(1), TANDEM_ROW(2), TANDEM_ROW(3)
#undef TANDEM_ROW
};

template <class Unpack>
float dot_kquant(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const typename Unpack::Block*>(w);
  const auto* acts = static_cast<const ActBlockQ8K*>(act);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  __m512i index[4];
  for (int c = 0; c < 4; ++c) index[c] = _mm512_load_si512(kScaleIndex[c]);
  KBlockParts p;
  for (int64_t i = 0; i < n / 256; ++i) {
    Unpack::unpack(blocks[i], p);
    const ActBlockQ8K& a = acts[i];
    const __m512i scales = _mm512_zextsi256_si512(load256(p.scale));
    __m512i isum = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      const __m512i q = _mm512_inserti64x4(_mm512_zextsi256_si512(p.q[2 * c]), p.q[2 * c + 1], 1);
      const __m512i prod = _mm512_maddubs_epi16(q, _mm512_loadu_si512(a.qs + 64 * c));
      isum = _mm512_dpwssd_epi32(isum, prod, _mm512_permutexvar_epi16(index[c], scales));
    }
    const __m256i bsums = load256(a.bsums);
    if constexpr (Unpack::kOffset != 0) {
      const __m256i corr = _mm256_madd_epi16(bsums, load256(p.scale));
      isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(
                                        _mm256_mullo_epi32(corr, _mm256_set1_epi32(Unpack::kOffset))));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(a.d * p.d), _mm512_cvtepi32_ps(isum), acc);
    if constexpr (Unpack::kHasMin) {
      const __m256i msum = _mm256_madd_epi16(bsums, load256(p.min));
      acc_min = _mm256_fmadd_ps(_mm256_set1_ps(a.d * p.dmin), _mm256_cvtepi32_ps(msum), acc_min);
    }
  }
  return reduce512(acc) - hsum256(acc_min);
}

}  // namespace

RowDotFn kquant_row_dot(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return dot_kquant<Q2KUnpack>;
    case GgmlType::Q3_K: return dot_kquant<Q3KUnpack>;
    case GgmlType::Q4_K: return dot_kquant<Q4KUnpack>;
    case GgmlType::Q5_K: return dot_kquant<Q5KUnpack>;
    case GgmlType::Q6_K: return dot_kquant<Q6KUnpack>;
    default: return nullptr;
  }
}

}  // namespace tandem::experts::avx512
