// AVX-512 kernels for the lattice i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S)
// against Q8K activations, in 512-bit vectors: each zmm holds a pair of 32-element sub-blocks
// (64 consecutive weights, so activations are read in order).
//
// Per pair: the grid magnitudes come from one 512-bit gather (8 qword points of the IQ1/IQ2
// codebooks, or 16 dword points of the IQ3 ones; on Sapphire Rapids one gather of 8 qwords is
// ~1.5x faster than eight scalar loads and their inserts, measured on the development VM); the
// 64 sign bits are one mask register for a masked subtract on the activations; maddubs(|w|, +-a)
// gives int16 pair sums and VNNI vpdpwssd multiplies them by the odd integer scale 2s + 1 of each
// sub-block (or 16-element group: one 128-bit lane) while accumulating, so a super-block is exact
// in int32. Packed fields (grid indices split over several bytes, 7-bit sign indices and their
// parity, 3- and 4-bit scales) are unpacked for the whole super-block at once (`prepare`).
// IQ1_S: the weight 8g +- 1 (g in -1, 0, 1) is written (g + 1) times 8 (the 8 rides on the
// scale) minus (8 -+ 1), the latter times the sub-block's activation sum from the Q8K bsums,
// which a second vpdpwssd adds into the same accumulator. IQ1_M's delta sign changes every 8
// elements, finer than the bsums: its weights are biased by 9 to 8 (g + 1) + (1 +- 1), unsigned,
// and 9 * scale * bsums comes back off.
// The many-activation kernel decodes each super-block once into registers (4 magnitude vectors,
// 4 sign masks, 4 scale vectors) for up to 16 activations. The AVX2 kernels keep
// iqgrid_kernels_x86.inc (256-bit, scalar codebook loads).
#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx512 {
namespace {

constexpr int kActsPerPass = 16;  // 4 magnitude + 4 scale vectors + 16 accumulators of 32 zmm
// Software prefetch distance in bytes (as the K-quant kernels): rows are streamed once.
constexpr int64_t kPrefetchBytes = 4096;

// One decoded pair of sub-blocks.
struct Pair {
  __m512i mag;     // unsigned grid magnitudes (IQ1: the biased weights)
  __mmask64 neg;   // activations to negate (IQ1: unused)
  __m512i scale;   // int16 multipliers for vpdpwssd, per 32-bit lane
};

inline uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint64_t u64_at(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Gathers into a freshly zeroed register: a gather merges into its destination, so it waits for
// that register's last writer, and with a full mask the intrinsics let the compiler pick any
// register (in one build, the one the previous super-block's maddubs wrote). Written in asm so
// the zeroing idiom stays and every pair's gather is independent.
inline __m512i gather_q(__m256i idx, const uint64_t* grid) {
  __m512i dst = _mm512_setzero_si512();
  __mmask8 all = 0xFF;
  asm("vpgatherdq (%[grid],%[idx],8), %[dst]%{%[all]%}"
      : [dst] "+&v"(dst), [all] "+&Yk"(all)
      : [grid] "r"(grid), [idx] "v"(idx));
  return dst;
}
inline __m512i gather_d(__m512i idx, const uint32_t* grid) {
  __m512i dst = _mm512_setzero_si512();
  __mmask16 all = 0xFFFF;
  asm("vpgatherdd (%[grid],%[idx],4), %[dst]%{%[all]%}"
      : [dst] "+&v"(dst), [all] "+&Yk"(all)
      : [grid] "r"(grid), [idx] "v"(idx));
  return dst;
}

// Keeps a prepared array in memory: the pairs read it with plain loads (vpmovzx / kmov from
// memory, load ports only) instead of the compiler extracting lanes from registers (port 5).
template <class A>
inline void in_memory(A& a) {
  asm("" : "+m"(a));
}

// int16 value s in both halves of each 32-bit lane (the vpdpwssd multiplier of a pair sum).
inline __m512i dup16(__m512i s32) { return _mm512_or_si512(s32, _mm512_slli_epi32(s32, 16)); }

// Scale vector of pair k from 8 per-sub-block dword multipliers (lanes 0-7 of `s`).
inline __m512i sub_scales(__m512i s, int k) {
  const __m512i sel = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_epi32(_mm512_add_epi32(sel, _mm512_set1_epi32(2 * k)), s);
}
// Scale vector of pair k from 16 per-16-element dword multipliers (128-bit lane L: group 4k + L).
inline __m512i group_scales(__m512i s, int k) {
  const __m512i sel = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  return _mm512_permutexvar_epi32(_mm512_add_epi32(sel, _mm512_set1_epi32(4 * k)), s);
}

// The 8 sign bytes of each of 8 aux words (4 x 7 sign bits, the byte's parity as bit 7: the
// even-parity table) and their scales 2s + 1 (s = aux >> 28) as vpdpwssd multipliers.
struct AuxPre {
  alignas(32) uint32_t signs[8];
  __m512i scales;
};
inline void aux_prepare(__m256i aux, AuxPre& p) {
  __m256i x = _mm256_and_si256(aux, _mm256_set1_epi32(0x7F));
  x = _mm256_or_si256(x, _mm256_and_si256(_mm256_slli_epi32(aux, 1), _mm256_set1_epi32(0x7F00)));
  x = _mm256_or_si256(x, _mm256_and_si256(_mm256_slli_epi32(aux, 2), _mm256_set1_epi32(0x7F0000)));
  x = _mm256_or_si256(x, _mm256_and_si256(_mm256_slli_epi32(aux, 3), _mm256_set1_epi32(0x7F000000)));
  __m256i t = _mm256_xor_si256(x, _mm256_srli_epi32(x, 4));  // bit 0 of each byte: its parity
  t = _mm256_xor_si256(t, _mm256_srli_epi32(t, 2));
  t = _mm256_xor_si256(t, _mm256_srli_epi32(t, 1));
  x = _mm256_or_si256(x, _mm256_slli_epi32(_mm256_and_si256(t, _mm256_set1_epi32(0x01010101)), 7));
  _mm256_store_si256(reinterpret_cast<__m256i*>(p.signs), x);
  in_memory(p.signs);
  const __m256i sc = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(aux, 28), 1), _mm256_set1_epi32(1));
  p.scales = dup16(_mm512_castsi256_si512(sc));
}

// 16 per-16-element scales from 8 bytes of nibbles (low nibble first) as multipliers 2s + 1.
inline __m512i nibble_scales(const uint8_t* p) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  const __m128i s = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
  const __m512i s32 = _mm512_cvtepu8_epi32(s);
  return dup16(_mm512_or_si512(_mm512_slli_epi32(s32, 1), _mm512_set1_epi32(1)));
}

// Byte parity folded into bit 7 for 7-bit sign indices held in the low bits of 16-bit lanes.
inline __m512i with_parity16(__m512i x) {
  __m512i t = _mm512_xor_si512(x, _mm512_srli_epi16(x, 4));
  t = _mm512_xor_si512(t, _mm512_srli_epi16(t, 2));
  t = _mm512_xor_si512(t, _mm512_srli_epi16(t, 1));
  return _mm512_or_si512(x, _mm512_slli_epi16(_mm512_and_si512(t, _mm512_set1_epi16(1)), 7));
}

// IQ2_XXS (66 bytes): d, then per sub-block two words: 4 grid indices; 4 x 7 sign bits and a
// 4-bit scale s. w = d * (2s + 1) / 8 * grid.
struct Iq2xxs {
  static constexpr bool kBiased = false;
  static constexpr int kBytes = sizeof(BlockIQ2_XXS);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 0.125f;
  struct Pre : AuxPre {
    alignas(64) uint8_t idx[64];  // pair k's 8 grid indices at 16k
  };
  static void prepare(const uint8_t* b, Pre& p) {
    const __m256i odd_low = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);  // aux words: odd words of qs
    const __m256i lo = _mm256_permutevar8x32_epi32(load256(b + 2), odd_low);
    const __m256i hi = _mm256_permutevar8x32_epi32(load256(b + 34), odd_low);
    aux_prepare(_mm256_blend_epi32(lo, hi, 0xF0), p);
    // Lane k of qs holds the index words of sub-blocks 2k, 2k + 1 at bytes 0-3 and 8-11.
    const __m512i gather = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15));
    _mm512_store_si512(p.idx, _mm512_shuffle_epi8(_mm512_loadu_si512(b + 2), gather));
    in_memory(p.idx);
  }
  static Pair pair(const uint8_t*, int k, const Pre& p) {
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p.idx + 16 * k)));
    return {gather_q(idx, iq::kIq2xxsGrid), __mmask64(u64_at(p.signs + 2 * k)), sub_scales(p.scales, k)};
  }
};

// IQ2_XS (74 bytes): d, 32 words (9-bit grid index | 7 sign bits << 9), 8 scale bytes (a nibble
// per 16 elements). w = d * (2s + 1) / 8 * grid.
struct Iq2xs {
  static constexpr bool kBiased = false;
  static constexpr int kBytes = sizeof(BlockIQ2_XS);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 0.125f;
  struct Pre {
    alignas(64) uint16_t idx[32];
    alignas(32) uint8_t signs[32];
    __m512i scales;
  };
  static void prepare(const uint8_t* b, Pre& p) {
    const __m512i q = _mm512_loadu_si512(b + 2);
    _mm512_store_si512(p.idx, _mm512_and_si512(q, _mm512_set1_epi16(511)));
    in_memory(p.idx);
    _mm256_store_si256(reinterpret_cast<__m256i*>(p.signs), _mm512_cvtepi16_epi8(with_parity16(_mm512_srli_epi16(q, 9))));
    in_memory(p.signs);
    p.scales = nibble_scales(b + 66);
  }
  static Pair pair(const uint8_t*, int k, const Pre& p) {
    const __m256i idx = _mm256_cvtepu16_epi32(load128(p.idx + 8 * k));
    return {gather_q(idx, iq::kIq2xsGrid), __mmask64(u64_at(p.signs + 8 * k)), group_scales(p.scales, k)};
  }
};

// IQ2_S (82 bytes): d, qs[32] (low 8 bits of the grid indices), signs[32] (a bit per element),
// qh[8] (2 high index bits per group of 8), scales[8] as IQ2_XS.
struct Iq2s {
  static constexpr bool kBiased = false;
  static constexpr int kBytes = sizeof(BlockIQ2_S);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 0.125f;
  struct Pre {
    alignas(64) uint16_t idx[32];  // 10-bit grid indices
    __m512i scales;
  };
  // Index j = qs[j] | bits 2(j % 4), +1 of qh[j / 4] at 8.
  static void prepare(const uint8_t* b, Pre& p) {
    const __m512i qh = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 66))));
    const __m512i rep = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1,
                                         0, 0, 0, 0);
    const __m512i shift = _mm512_set1_epi64(0x0006000400020000);  // 0, 2, 4, 6 per group of 4
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(rep, qh), shift), _mm512_set1_epi16(3));
    const __m512i lo = _mm512_cvtepu8_epi16(load256(b + 2));
    _mm512_store_si512(p.idx, _mm512_or_si512(lo, _mm512_slli_epi16(hi, 8)));
    in_memory(p.idx);
    p.scales = nibble_scales(b + 74);
  }
  static Pair pair(const uint8_t* b, int k, const Pre& p) {
    const __m256i idx = _mm256_cvtepu16_epi32(load128(p.idx + 8 * k));
    return {gather_q(idx, iq::kIq2sGrid), __mmask64(u64_at(b + 34 + 8 * k)), group_scales(p.scales, k)};
  }
};

// IQ3_XXS (98 bytes): d, qs[64] (a grid index per 4 elements), then per sub-block a word of
// 4 x 7 sign bits and a 4-bit scale s. w = d * (2s + 1) / 4 * grid.
struct Iq3xxs {
  static constexpr bool kBiased = false;
  static constexpr int kBytes = sizeof(BlockIQ3_XXS);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 0.25f;
  using Pre = AuxPre;
  static void prepare(const uint8_t* b, Pre& p) { aux_prepare(load256(b + 66), p); }
  static Pair pair(const uint8_t* b, int k, const Pre& p) {
    const __m512i idx = _mm512_cvtepu8_epi32(load128(b + 2 + 16 * k));
    return {gather_d(idx, iq::kIq3xxsGrid), __mmask64(u64_at(p.signs + 2 * k)), sub_scales(p.scales, k)};
  }
};

// IQ3_S (110 bytes): d, qs[64] (low 8 bits of a grid index per 4 elements), qh[8] (the 9th
// bits), signs[32] (a bit per element), scales[4] (a nibble per sub-block). w = d * (2s + 1) * grid.
struct Iq3s {
  static constexpr bool kBiased = false;
  static constexpr int kBytes = sizeof(BlockIQ3_S);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 1.0f;
  struct Pre {
    __m512i scales;
  };
  static void prepare(const uint8_t* b, Pre& p) {
    uint32_t nib;
    std::memcpy(&nib, b + 106, 4);
    const __m512i shift = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
    const __m512i s = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(int(nib)), shift), _mm512_set1_epi32(15));
    p.scales = dup16(_mm512_or_si512(_mm512_slli_epi32(s, 1), _mm512_set1_epi32(1)));
  }
  // Index j of the pair = qs[16k + j] | bit j of qh[2k..2k+1] at 8 (a mask register).
  static Pair pair(const uint8_t* b, int k, const Pre& p) {
    const __m512i lo = _mm512_cvtepu8_epi32(load128(b + 2 + 16 * k));
    const __m512i idx = _mm512_mask_or_epi32(lo, __mmask16(u16_at(b + 66 + 2 * k)), lo, _mm512_set1_epi32(256));
    return {gather_d(idx, iq::kIq3sGrid), __mmask64(u64_at(b + 74 + 8 * k)), sub_scales(p.scales, k)};
  }
};

// IQ1_S (50 bytes): d, qs[32] (low 8 bits of 11-bit grid indices), qh[8] words (3 high bits per
// index, a 3-bit scale s at 12, the delta's sign at 15). w = d * (2s + 1) / 8 * (8 grid +- 1).
struct Iq1s {
  static constexpr bool kBiased = true;
  static constexpr int kBytes = sizeof(BlockIQ1_S);
  static float d(const uint8_t* b) { return fp16_to_float(u16_at(b)); }
  static constexpr float kD = 0.125f;
  struct Pre {
    alignas(64) uint16_t idx[32];
    __m512i scales;  // 8 (2s + 1) per sub-block
    __m512i bias;    // -(2s + 1)(8 -+ 1) per 16-element group, in the low 256 bits (for the bsums)
  };
  // Index j = qs[j] | bits 3(j % 4)..+2 of qh[j / 4] at 8.
  static void prepare(const uint8_t* b, Pre& p) {
    const __m128i qh = load128(b + 34);
    const __m512i rep = _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1,
                                         0, 0, 0, 0);
    const __m512i shift = _mm512_set1_epi64(0x0009000600030000);  // 0, 3, 6, 9 per group of 4
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(rep, _mm512_castsi128_si512(qh)), shift),
                                        _mm512_set1_epi16(7));
    const __m512i lo = _mm512_cvtepu8_epi16(load256(b + 2));
    _mm512_store_si512(p.idx, _mm512_or_si512(lo, _mm512_slli_epi16(hi, 8)));
    in_memory(p.idx);
    const __m128i sc = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 12), _mm_set1_epi16(7)), 1), _mm_set1_epi16(1));
    p.scales = dup16(_mm512_slli_epi32(_mm512_castsi256_si512(_mm256_cvtepu16_epi32(sc)), 3));
    // 8 - delta: 7 for +1 (bit 15 clear), 9 for -1.
    const __m128i off = _mm_add_epi16(_mm_set1_epi16(7), _mm_slli_epi16(_mm_srli_epi16(qh, 15), 1));
    const __m128i f = _mm_sub_epi16(_mm_setzero_si128(), _mm_mullo_epi16(sc, off));
    p.bias = _mm512_castsi256_si512(_mm256_set_m128i(_mm_unpackhi_epi16(f, f), _mm_unpacklo_epi16(f, f)));
  }
  static Pair pair(const uint8_t*, int k, const Pre& p) {
    const __m256i idx = _mm256_cvtepu16_epi32(load128(p.idx + 8 * k));
    const __m512i g = gather_q(idx, iq::kIq1sGrid);
    return {_mm512_add_epi8(g, _mm512_set1_epi8(1)), 0, sub_scales(p.scales, k)};
  }
  static __m512i bias(__m512i acc, const int16_t* bsums, const Pre& p) {
    return _mm512_dpwssd_epi32(acc, _mm512_zextsi256_si512(load256(bsums)), _mm512_zextsi256_si512(_mm512_castsi512_si256(p.bias)));
  }
};

// IQ1_M (56 bytes): qs[32], qh[16] (a nibble per index: 3 high bits, the delta's sign at 3),
// scales[8]: four words, 3-bit scales per 16 elements in bits 0..11, the f16 d in the top
// nibbles of the four. w = d * (2s + 1) / 8 * (8 grid +- 1).
struct Iq1m {
  static constexpr bool kBiased = true;
  static constexpr int kBytes = sizeof(BlockIQ1_M);
  static float d(const uint8_t* b) {
    const uint16_t s0 = u16_at(b + 48), s1 = u16_at(b + 50), s2 = u16_at(b + 52), s3 = u16_at(b + 54);
    const uint16_t h = uint16_t((s0 >> 12) | ((s1 >> 8) & 0x00F0) | ((s2 >> 4) & 0x0F00) | (s3 & 0xF000));
    return fp16_to_float(h);
  }
  static constexpr float kD = 0.125f;
  struct Pre {
    alignas(64) uint16_t idx[32];
    uint32_t plus;   // bit j: group j of 8 has delta +1 (its biased weights get + 2)
    __m512i scales;  // 2s + 1 per 16-element group
    __m512i bias;    // -9 (2s + 1) per group, in the low 256 bits
  };
  static void prepare(const uint8_t* b, Pre& p) {
    const __m512i half = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4,
                                          4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i qh = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(load128(b + 32)));
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi16(half, qh), _mm512_set1_epi32(0x00040000)),
                                         _mm512_set1_epi16(15));
    const __m512i lo = _mm512_cvtepu8_epi16(load256(b));
    _mm512_store_si512(p.idx, _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(nib, _mm512_set1_epi16(7)), 8)));
    in_memory(p.idx);
    p.plus = _mm512_testn_epi16_mask(nib, _mm512_set1_epi16(8));
    // Scale of group g = bits 3(g % 4)..+2 of word g / 4.
    const __m256i w = _mm256_castsi128_si256(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 48)));
    const __m256i rep = _mm256_setr_epi16(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m256i sh = _mm256_set1_epi64x(0x0009000600030000);
    const __m256i s = _mm256_and_si256(_mm256_srlv_epi16(_mm256_permutexvar_epi16(rep, w), sh), _mm256_set1_epi16(7));
    const __m256i sc = _mm256_or_si256(_mm256_slli_epi16(s, 1), _mm256_set1_epi16(1));
    p.scales = dup16(_mm512_cvtepu16_epi32(sc));
    p.bias = _mm512_castsi256_si512(_mm256_mullo_epi16(sc, _mm256_set1_epi16(-9)));
  }
  static Pair pair(const uint8_t*, int k, const Pre& p) {
    const __m256i idx = _mm256_cvtepu16_epi32(load128(p.idx + 8 * k));
    const __m512i g = gather_q(idx, iq::kIq1sGrid);
    const __m512i w = _mm512_slli_epi64(_mm512_add_epi8(g, _mm512_set1_epi8(1)), 3);  // 8 (g + 1) <= 16: no carry
    return {_mm512_mask_or_epi64(w, __mmask8(p.plus >> (8 * k)), w, _mm512_set1_epi8(2)), 0, group_scales(p.scales, k)};
  }
  static __m512i bias(__m512i acc, const int16_t* bsums, const Pre& p) {
    return _mm512_dpwssd_epi32(acc, _mm512_zextsi256_si512(load256(bsums)), _mm512_zextsi256_si512(_mm512_castsi512_si256(p.bias)));
  }
};

template <class T>
inline __m512i pair_acc(__m512i acc, const Pair& s, const int8_t* qa) {
  __m512i a = _mm512_loadu_si512(qa);
  if constexpr (!T::kBiased) a = _mm512_mask_sub_epi8(a, s.neg, _mm512_setzero_si512(), a);
  return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(s.mag, a), s.scale);
}

// Integer dot of one decoded super-block with one activation block.
template <class T>
inline __m512i block_dot(const Pair (&pairs)[4], const ActBlockQ8K& a, const typename T::Pre& pre) {
  __m512i p = _mm512_setzero_si512();
  _Pragma("GCC unroll 4")
  for (int k = 0; k < 4; ++k) p = pair_acc<T>(p, pairs[k], a.qs + 64 * k);
  if constexpr (T::kBiased) p = T::bias(p, a.bsums, pre);
  return p;
}

template <class T>
float dot_iq(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const uint8_t*>(w);
  const auto* a = static_cast<const ActBlockQ8K*>(act);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / 256; ++i) {
    const uint8_t* b = blocks + i * T::kBytes;
    _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes, _MM_HINT_T0);
    typename T::Pre pre;
    T::prepare(b, pre);
    Pair pairs[4];
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; ++k) pairs[k] = T::pair(b, k, pre);
    const __m512i p = block_dot<T>(pairs, a[i], pre);
    acc = _mm512_fmadd_ps(_mm512_set1_ps(T::d(b) * a[i].d), _mm512_cvtepi32_ps(p), acc);
  }
  return T::kD * _mm512_reduce_add_ps(acc);
}

template <class T, int kActs>
void dot_pass(int64_t n, const uint8_t* blocks, const void* const* acts, float* out) {
  __m512 acc[kActs];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t i = 0; i < n / 256; ++i) {
    const uint8_t* b = blocks + i * T::kBytes;
    _mm_prefetch(reinterpret_cast<const char*>(b) + kPrefetchBytes, _MM_HINT_T0);
    typename T::Pre pre;
    T::prepare(b, pre);
    Pair pairs[4];
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; ++k) pairs[k] = T::pair(b, k, pre);
    const float d = T::d(b);
    _Pragma("GCC unroll 16")
    for (int j = 0; j < kActs; ++j) {
      const ActBlockQ8K& a = static_cast<const ActBlockQ8K*>(acts[j])[i];
      acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(d * a.d), _mm512_cvtepi32_ps(block_dot<T>(pairs, a, pre)), acc[j]);
    }
  }
  for (int j = 0; j < kActs; ++j) out[j] = T::kD * _mm512_reduce_add_ps(acc[j]);
}

template <class T>
void dot_iq_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  const auto* blocks = static_cast<const uint8_t*>(w);
  for (int a0 = 0; a0 < n_acts; a0 += kActsPerPass) {
    const void* const* at = acts + a0;
    float* o = out + a0;
    switch (n_acts - a0 < kActsPerPass ? n_acts - a0 : kActsPerPass) {
      case 1: o[0] = dot_iq<T>(n, blocks, at[0]); break;
      case 2: dot_pass<T, 2>(n, blocks, at, o); break;
      case 3: dot_pass<T, 3>(n, blocks, at, o); break;
      case 4: dot_pass<T, 4>(n, blocks, at, o); break;
      case 5: dot_pass<T, 5>(n, blocks, at, o); break;
      case 6: dot_pass<T, 6>(n, blocks, at, o); break;
      case 7: dot_pass<T, 7>(n, blocks, at, o); break;
      case 8: dot_pass<T, 8>(n, blocks, at, o); break;
      case 9: dot_pass<T, 9>(n, blocks, at, o); break;
      case 10: dot_pass<T, 10>(n, blocks, at, o); break;
      case 11: dot_pass<T, 11>(n, blocks, at, o); break;
      case 12: dot_pass<T, 12>(n, blocks, at, o); break;
      case 13: dot_pass<T, 13>(n, blocks, at, o); break;
      case 14: dot_pass<T, 14>(n, blocks, at, o); break;
      case 15: dot_pass<T, 15>(n, blocks, at, o); break;
      default: dot_pass<T, 16>(n, blocks, at, o); break;
    }
  }
}

template <class T>
constexpr RowKernels iq_pair() {
  return {dot_iq<T>, dot_iq_many<T>};
}

}  // namespace

RowKernels iqgrid_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::IQ2_XXS: return iq_pair<Iq2xxs>();
    case GgmlType::IQ2_XS: return iq_pair<Iq2xs>();
    case GgmlType::IQ2_S: return iq_pair<Iq2s>();
    case GgmlType::IQ3_XXS: return iq_pair<Iq3xxs>();
    case GgmlType::IQ3_S: return iq_pair<Iq3s>();
    case GgmlType::IQ1_S: return iq_pair<Iq1s>();
    case GgmlType::IQ1_M: return iq_pair<Iq1m>();
    default: return {};
  }
}

}  // namespace tandem::experts::avx512
