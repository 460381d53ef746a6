// AVX-512 VNNI tile kernels of the repacked K-quant layout (repacked.h): 16 rows x up to 8
// tokens in registers. Each 64-byte load of the nibble plane gives two weight vectors (a shift
// and two masks; Q5_K/Q6_K merge their high bits with one shift and one vpternlogd), each used by
// one vpdpbusd per token with activation bytes broadcast from memory. Scales are widened from
// bytes once per sub-block for all tokens.
#include "experts/activation_blocks.h"
#include "experts/kernels/repacked.h"
#include "experts/kernels/x86_intrinsics.h"

namespace tandem::experts::avx512 {
namespace {

inline __m512i bcast4(const int8_t* p) {
  int32_t four;
  __builtin_memcpy(&four, p, 4);
  return _mm512_set1_epi32(four);
}

// (a & mask) | b, one vpternlogd: 0xEA = (A & B) | C.
inline __m512i or_masked(__m512i a, __m512i mask, __m512i b) { return _mm512_ternarylogic_epi32(a, mask, b, 0xEA); }

// Bit j of each byte of h moved to bit 4 (Q5_K high bit of chunk j).
template <int J>
inline __m512i high_bit(__m512i h) {
  if constexpr (J < 4) return _mm512_slli_epi16(h, 4 - J);
  else if constexpr (J == 4) return h;
  else return _mm512_srli_epi16(h, J - 4);
}

template <int T, bool kQ5>
void tile_q45(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums, float* out) {
  constexpr int64_t kBlockBytes = kQ5 ? 2944 : 2432;
  const __m512i low4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
  const ActBlockQ8K* a[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a[t] = static_cast<const ActBlockQ8K*>(acts[t]);
  __m512 acc[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* q = group + b * kBlockBytes;
    const uint8_t* hi = q + 2048;
    const uint8_t* sc = q + 2048 + (kQ5 ? 512 : 0);
    const __m512 dv = _mm512_load_ps(sc + 256), dminv = _mm512_load_ps(sc + 320);
    __m512 block[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) block[t] = _mm512_setzero_ps();
    #pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      __m512i sum[T];
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) sum[t] = _mm512_setzero_si512();
      __m512i h = _mm512_setzero_si512();
      if constexpr (kQ5) h = _mm512_load_si512(hi + s * 64);
      #pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) {
        const __m512i v = _mm512_load_si512(q + (s * 4 + k) * 64);
        __m512i w0 = _mm512_and_si512(v, low4), w1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        if constexpr (kQ5) {
          // chunks 2k and 2k+1 of the sub-block (k is a compile-time constant after unrolling)
          switch (k) {
            case 0: w0 = or_masked(high_bit<0>(h), bit4, w0), w1 = or_masked(high_bit<1>(h), bit4, w1); break;
            case 1: w0 = or_masked(high_bit<2>(h), bit4, w0), w1 = or_masked(high_bit<3>(h), bit4, w1); break;
            case 2: w0 = or_masked(high_bit<4>(h), bit4, w0), w1 = or_masked(high_bit<5>(h), bit4, w1); break;
            default: w0 = or_masked(high_bit<6>(h), bit4, w0), w1 = or_masked(high_bit<7>(h), bit4, w1); break;
          }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const int8_t* x = a[t][b].qs + s * 32 + k * 8;
          sum[t] = _mm512_dpbusd_epi32(sum[t], w0, bcast4(x));
          sum[t] = _mm512_dpbusd_epi32(sum[t], w1, bcast4(x + 4));
        }
      }
      const __m512 sv = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + s * 16)))), dv);
      const __m512 mv = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + 128 + s * 16)))),
          dminv);
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        block[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[t]), sv, block[t]);
        acc[t] = _mm512_fnmadd_ps(mv, _mm512_set1_ps(act_sums[t][b * 8 + s]), acc[t]);
      }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(block[t], _mm512_set1_ps(a[t][b].d), acc[t]);
  }
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + t * kRepackRows, acc[t]);
}

template <int T>
void tile_q6(const uint8_t* group, int64_t cols, const void* const* acts, const float* const*, float* out) {
  constexpr int64_t kBlockBytes = 3392;
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  const ActBlockQ8K* a[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a[t] = static_cast<const ActBlockQ8K*>(acts[t]);
  __m512 acc[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* q = group + b * kBlockBytes;
    const uint8_t* hi = q + 2048;
    const uint8_t* sc = q + 3072;
    __m512 block[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) block[t] = _mm512_setzero_ps();
    #pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      const __m512i h = _mm512_load_si512(hi + g * 64);
      const __m512i v0 = _mm512_load_si512(q + (2 * g) * 64), v1 = _mm512_load_si512(q + (2 * g + 1) * 64);
      const __m512i w0 = or_masked(_mm512_slli_epi16(h, 4), bits45, _mm512_and_si512(v0, low4));
      const __m512i w1 = or_masked(_mm512_slli_epi16(h, 2), bits45, _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4));
      const __m512i w2 = or_masked(h, bits45, _mm512_and_si512(v1, low4));
      const __m512i w3 = or_masked(_mm512_srli_epi16(h, 2), bits45, _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4));
      const __m512 scv =
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sc + g * 16))));
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const int8_t* x = a[t][b].qs + g * 16;
        __m512i sum = _mm512_set1_epi32(-32 * a[t][b].bsums[g]);
        sum = _mm512_dpbusd_epi32(sum, w0, bcast4(x));
        sum = _mm512_dpbusd_epi32(sum, w1, bcast4(x + 4));
        sum = _mm512_dpbusd_epi32(sum, w2, bcast4(x + 8));
        sum = _mm512_dpbusd_epi32(sum, w3, bcast4(x + 12));
        block[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scv, block[t]);
      }
    }
    const __m512 dv = _mm512_load_ps(q + 3328);
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(block[t], _mm512_mul_ps(dv, _mm512_set1_ps(a[t][b].d)), acc[t]);
  }
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_storeu_ps(out + t * kRepackRows, acc[t]);
}

using Tile = void (*)(const uint8_t*, int64_t, const void* const*, const float* const*, float*);

template <template <int> class K>
void by_tokens(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
               int n_tokens, float* out) {
  static constexpr Tile kTiles[8] = {K<1>::f, K<2>::f, K<3>::f, K<4>::f, K<5>::f, K<6>::f, K<7>::f, K<8>::f};
  kTiles[(n_tokens < 1 ? 1 : n_tokens > 8 ? 8 : n_tokens) - 1](group, cols, acts, act_sums, out);
}

template <int T>
struct Q4 {
  static constexpr Tile f = tile_q45<T, false>;
};
template <int T>
struct Q5 {
  static constexpr Tile f = tile_q45<T, true>;
};
template <int T>
struct Q6 {
  static constexpr Tile f = tile_q6<T>;
};

}  // namespace

void repacked_q4k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out) {
  by_tokens<Q4>(group, cols, acts, act_sums, n_tokens, out);
}
void repacked_q5k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out) {
  by_tokens<Q5>(group, cols, acts, act_sums, n_tokens, out);
}
void repacked_q6k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out) {
  by_tokens<Q6>(group, cols, acts, act_sums, n_tokens, out);
}

}  // namespace tandem::experts::avx512
