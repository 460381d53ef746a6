// AVX-512 VNNI tile kernel of the repacked Q4_K layout: 16 rows x up to 8 tokens in registers.
// Per 32-column sub-block: 8 weight loads, each used by one vpdpbusd per token (activation bytes
// broadcast from memory), then one int->float convert and two FMAs per token for the scales.
#include "experts/activation_blocks.h"
#include "experts/kernels/repacked_q4k.h"
#include "experts/kernels/x86_intrinsics.h"

namespace tandem::experts::avx512 {
namespace {

template <int T>
void tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums, float* out) {
  const ActBlockQ8K* a[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) a[t] = static_cast<const ActBlockQ8K*>(acts[t]);
  __m512 acc[T];
  #pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < cols / 256; ++b) {
    const uint8_t* q = group + b * kRepackedBlockBytes;
    const float* scale = reinterpret_cast<const float*>(q + 4096);
    const float* min = scale + 8 * 16;
    __m512 block[T];
    #pragma GCC unroll 8
    for (int t = 0; t < T; ++t) block[t] = _mm512_setzero_ps();
    #pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      __m512i sum[T];
      #pragma GCC unroll 8
      for (int t = 0; t < T; ++t) sum[t] = _mm512_setzero_si512();
      #pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        const __m512i w = _mm512_load_si512(q + (s * 8 + k) * 64);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          int32_t four;
          __builtin_memcpy(&four, a[t][b].qs + s * 32 + k * 4, 4);
          sum[t] = _mm512_dpbusd_epi32(sum[t], w, _mm512_set1_epi32(four));
        }
      }
      const __m512 sv = _mm512_load_ps(scale + s * 16), mv = _mm512_load_ps(min + s * 16);
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

}  // namespace

void repacked_q4k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out) {
  switch (n_tokens) {
    case 1: return tile<1>(group, cols, acts, act_sums, out);
    case 2: return tile<2>(group, cols, acts, act_sums, out);
    case 3: return tile<3>(group, cols, acts, act_sums, out);
    case 4: return tile<4>(group, cols, acts, act_sums, out);
    case 5: return tile<5>(group, cols, acts, act_sums, out);
    case 6: return tile<6>(group, cols, acts, act_sums, out);
    case 7: return tile<7>(group, cols, acts, act_sums, out);
    default: return tile<8>(group, cols, acts, act_sums, out);
  }
}

}  // namespace tandem::experts::avx512
