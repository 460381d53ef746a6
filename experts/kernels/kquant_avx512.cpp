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

// Activations per pass over the row: each decoded block is used this many times.
constexpr int kActsPerPass = 8;

template <class Unpack>
void dot_kquant_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const typename Unpack::Block*>(w);
  __m512i index[4];
  for (int c = 0; c < 4; ++c) index[c] = _mm512_load_si512(kScaleIndex[c]);
  for (int a0 = 0; a0 < n_acts; a0 += kActsPerPass) {
    const int na = n_acts - a0 < kActsPerPass ? n_acts - a0 : kActsPerPass;
    __m512 acc[kActsPerPass];
    for (auto& v : acc) v = _mm512_setzero_ps();
    KBlockParts p;
    for (int64_t i = 0; i < n / 256; ++i) {
      Unpack::unpack(blocks[i], p);
      const __m512i scales = _mm512_zextsi256_si512(load256(p.scale));
      __m512i q[4], sc[4];
      for (int c = 0; c < 4; ++c) {
        q[c] = _mm512_inserti64x4(_mm512_zextsi256_si512(p.q[2 * c]), p.q[2 * c + 1], 1);
        sc[c] = _mm512_permutexvar_epi16(index[c], scales);
      }
      for (int j = 0; j < na; ++j) {
        const ActBlockQ8K& a = static_cast<const ActBlockQ8K*>(acts[a0 + j])[i];
        __m512i isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; ++c)
          isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(q[c], _mm512_loadu_si512(a.qs + 64 * c)), sc[c]);
        const __m256i bsums = load256(a.bsums);
        if constexpr (Unpack::kOffset != 0) {
          const __m256i corr = _mm256_madd_epi16(bsums, load256(p.scale));
          isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(
                                            _mm256_mullo_epi32(corr, _mm256_set1_epi32(Unpack::kOffset))));
        }
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(a.d * p.d), _mm512_cvtepi32_ps(isum), acc[j]);
        if constexpr (Unpack::kHasMin) {
          const __m256i msum = _mm256_madd_epi16(bsums, load256(p.min));
          acc[j] = _mm512_fnmadd_ps(_mm512_set1_ps(a.d * p.dmin), _mm512_cvtepi32_ps(_mm512_zextsi256_si512(msum)),
                                    acc[j]);
        }
      }
    }
    for (int j = 0; j < na; ++j) out[a0 + j] = reduce512(acc[j]);
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

}  // namespace tandem::experts::avx512
