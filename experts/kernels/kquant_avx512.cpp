// AVX-512 K-quant kernels with native 512-bit unpacking: each zmm holds 64 consecutive weights
// (two 32-element sub-blocks), so activations are read in their natural order. A 32-byte field
// is broadcast to both halves and shifted per 64-bit lane by different counts (vpsrlvq/vprolvq),
// which replaces the cross-lane inserts of widening 256-bit unpackers. maddubs (u8 weights x s8
// activations) then vpdpwssd with the int16 group scales broadcast per 128-bit lane by vpermw.
#include <cstdlib>

#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_scales_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts::avx512 {
namespace {

struct KBlock512 {
  __m512i q[4];  // q[c]: unsigned weights of elements 64c..64c+63
  __m256i scale16, min16;
  float d, dmin;
};

inline __m512i bcast256(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// Shift/rotate counts: lo for the low 256 bits, hi for the high 256 bits.
inline __m512i counts(int64_t lo, int64_t hi) { return _mm512_set_epi64(hi, hi, hi, hi, lo, lo, lo, lo); }
// a | (b & c), one vpternlogq.
inline __m512i or_and(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi64(a, b, c, 0xF8); }
// Byte-wise: bit `bit_lo` (low half) / `bit_hi` (high half) of every byte of `bits`, moved to bit
// `to` and masked. A 64-bit rotate keeps bits within their byte for moves of at most 7.
inline __m512i bit_at(__m512i bits, int bit_lo, int bit_hi, int to) {
  const __m512i r = _mm512_rolv_epi64(bits, counts((to - bit_lo) & 63, (to - bit_hi) & 63));
  return _mm512_and_si512(r, _mm512_set1_epi8(char(1 << to)));
}

struct Q2K {
  using Block = BlockQ2_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlock512& o) {
    const __m512i m3 = _mm512_set1_epi8(3);
    for (int c = 0; c < 4; ++c) {  // elements 128h + 32j + l = bits 2j of qs[32h + l]
      const int h = c >> 1, j = 2 * (c & 1);
      o.q[c] = _mm512_and_si512(_mm512_srlv_epi64(bcast256(b.qs + 32 * h), counts(2 * j, 2 * j + 2)), m3);
    }
    q2k_scales_mins16(b.scales, o.scale16, o.min16);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q3K {
  using Block = BlockQ3_K;
  static constexpr int kOffset = 4;
  static constexpr bool kHasMin = false;
  static void unpack(const Block& b, KBlock512& o) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i hm = bcast256(b.hmask);
    for (int c = 0; c < 4; ++c) {  // as Q2_K, plus 4 where bit 4h+j of hmask[l] is set
      const int h = c >> 1, j = 2 * (c & 1);
      const __m512i low = _mm512_and_si512(_mm512_srlv_epi64(bcast256(b.qs + 32 * h), counts(2 * j, 2 * j + 2)), m3);
      o.q[c] = _mm512_or_si512(low, bit_at(hm, 4 * h + j, 4 * h + j + 1, 2));
    }
    o.scale16 = q3k_scales16(b.scales);
    o.min16 = _mm256_setzero_si256();
    o.d = fp16_to_float(b.d);
    o.dmin = 0;
  }
};

struct Q4K {
  using Block = BlockQ4_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlock512& o) {
    const __m512i m4 = _mm512_set1_epi8(0xF);
    const __m512i shift = counts(0, 4);
    for (int c = 0; c < 4; ++c)  // low nibbles of qs[32c..] then high nibbles
      o.q[c] = _mm512_and_si512(_mm512_srlv_epi64(bcast256(b.qs + 32 * c), shift), m4);
    k4_scales_mins16(b.scales, o.scale16, o.min16);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q5K {
  using Block = BlockQ5_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlock512& o) {
    const __m512i m4 = _mm512_set1_epi8(0xF), bit4 = _mm512_set1_epi8(0x10);
    const __m512i shift = counts(0, 4);
    const __m512i qh = bcast256(b.qh);
    for (int c = 0; c < 4; ++c) {  // Q4_K plus bit (sub-block index) of qh[l] as bit 4
      const __m512i low = _mm512_and_si512(_mm512_srlv_epi64(bcast256(b.qs + 32 * c), shift), m4);
      const __m512i r = _mm512_rolv_epi64(qh, counts((4 - 2 * c) & 63, (3 - 2 * c) & 63));
      o.q[c] = or_and(low, r, bit4);
    }
    k4_scales_mins16(b.scales, o.scale16, o.min16);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q6K {
  using Block = BlockQ6_K;
  static constexpr int kOffset = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const Block& b, KBlock512& o) {
    const __m512i m4 = _mm512_set1_epi8(0xF), m30 = _mm512_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
      // Elements 128h + 0..63: low nibbles of ql[64h..]; 128h + 64..127: the high nibbles. Their
      // two top bits are bit pairs (0,1) (2,3) (4,5) (6,7) of qh[32h + l], moved to bits 4-5.
      const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
      const __m512i qh = bcast256(b.qh + 32 * h);
      const __m512i lo = _mm512_and_si512(ql, m4), hi = _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4);
      o.q[2 * h] = or_and(lo, _mm512_rolv_epi64(qh, counts(4, 2)), m30);
      o.q[2 * h + 1] = or_and(hi, _mm512_rolv_epi64(qh, counts(0, 62)), m30);
    }
    o.scale16 = q6k_scales16(b.scales);
    o.min16 = _mm256_setzero_si256();
    o.d = fp16_to_float(b.d);
    o.dmin = 0;
  }
};

// Own horizontal sum: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its header.
inline float reduce512(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// Lane k of zmm c takes group scale 4c + k/8 (the maddubs output of 64 elements: 8 lanes per
// 16-element group).
alignas(64) constexpr int16_t kScaleIndex[4][32] = {
#define TANDEM_ROW(c) {4*c,4*c,4*c,4*c,4*c,4*c,4*c,4*c, 4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1,4*c+1, \
                       4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2,4*c+2, 4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3,4*c+3}
    TANDEM_ROW(0), TANDEM_ROW(1), TANDEM_ROW(2), TANDEM_ROW(3)
#undef TANDEM_ROW
};

// Activations per pass over the row: each decoded block is used this many times.
constexpr int kActsPerPass = 16;
// Software prefetch distance in bytes: rows are streamed once, a little ahead of the hardware
// prefetcher's ramp-up at the start of each row tile.
constexpr int64_t kPrefetchBytes = 4096;

template <class T, int kActs>
inline void dot_pass(int64_t n_blocks, const typename T::Block* blocks, const void* const* acts, float* out) {
  __m512i index[4];
  for (int c = 0; c < 4; ++c) index[c] = _mm512_load_si512(kScaleIndex[c]);
  __m512 acc[kActs];
  for (auto& v : acc) v = _mm512_setzero_ps();
  KBlock512 p;
  for (int64_t i = 0; i < n_blocks; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(blocks + i) + kPrefetchBytes, _MM_HINT_T0);
    T::unpack(blocks[i], p);
    const __m512i scales = _mm512_zextsi256_si512(p.scale16);
    __m512i sc[4];
    for (int c = 0; c < 4; ++c) sc[c] = _mm512_permutexvar_epi16(index[c], scales);
    // Undoes the unsigned offset: sum over groups of kOffset * scale * bsum.
    const __m256i off16 = _mm256_mullo_epi16(p.scale16, _mm256_set1_epi16(int16_t(T::kOffset)));
    for (int j = 0; j < kActs; ++j) {
      const ActBlockQ8K& a = static_cast<const ActBlockQ8K*>(acts[j])[i];
      __m512i isum = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c)
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(p.q[c], _mm512_load_si512(a.qs + 64 * c)), sc[c]);
      const __m256i bsums = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.bsums));
      if constexpr (T::kOffset != 0)
        isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(_mm256_madd_epi16(bsums, off16)));
      acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(a.d * p.d), _mm512_cvtepi32_ps(isum), acc[j]);
      if constexpr (T::kHasMin) {
        const __m256i msum = _mm256_madd_epi16(bsums, p.min16);
        acc[j] = _mm512_fnmadd_ps(_mm512_set1_ps(a.d * p.dmin), _mm512_cvtepi32_ps(_mm512_zextsi256_si512(msum)),
                                  acc[j]);
      }
    }
  }
  for (int j = 0; j < kActs; ++j) out[j] = reduce512(acc[j]);
}

template <class T>
void dot_kquant_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const typename T::Block*>(w);
  int a0 = 0;
  for (; a0 + kActsPerPass <= n_acts; a0 += kActsPerPass) dot_pass<T, kActsPerPass>(n / 256, blocks, acts + a0, out + a0);
  if (n_acts - a0 >= 8) dot_pass<T, 8>(n / 256, blocks, acts + a0, out + a0), a0 += 8;
  if (n_acts - a0 >= 4) dot_pass<T, 4>(n / 256, blocks, acts + a0, out + a0), a0 += 4;
  if (n_acts - a0 >= 2) dot_pass<T, 2>(n / 256, blocks, acts + a0, out + a0), a0 += 2;
  if (n_acts - a0 == 1) dot_pass<T, 1>(n / 256, blocks, acts + a0, out + a0);
}

template <class T>
float dot_kquant(int64_t n, const void* w, const void* act) {
  float r;
  dot_pass<T, 1>(n / 256, static_cast<const typename T::Block*>(w), &act, &r);
  return r;
}

}  // namespace

RowKernels kquant_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::Q2_K: return {dot_kquant<Q2K>, dot_kquant_many<Q2K>};
    case GgmlType::Q3_K: return {dot_kquant<Q3K>, dot_kquant_many<Q3K>};
    case GgmlType::Q4_K: return {dot_kquant<Q4K>, dot_kquant_many<Q4K>};
    case GgmlType::Q5_K: return {dot_kquant<Q5K>, dot_kquant_many<Q5K>};
    case GgmlType::Q6_K: return {dot_kquant<Q6K>, dot_kquant_many<Q6K>};
    default: return {};
  }
}

}  // namespace tandem::experts::avx512
