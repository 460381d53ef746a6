// AVX-512 kernels for the 32-element block types: vpdpbusd (VNNI, 256-bit) per block, fp32 accumulation.
#include <cstdlib>

#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/legacy_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

float dot_q5_0_x2(int64_t n, const void* w, const void* act);
void dot_q5_0_x2_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out);
RowKernels q5_0_row_kernels();
#define TANDEM_LEGACY_Q5_0_KERNELS q5_0_row_kernels()

#include "experts/kernels/legacy_kernels_x86.inc"

namespace {

// Q5_0 with native 512-bit unpacking, two blocks (64 weights, 44 bytes) per zmm: each block's 16
// nibble bytes broadcast to two 128-bit lanes, shifted by 0 / 4 per lane (low nibbles are weights
// 0-15, high 16-31) and masked; the two 32-bit qh fields form one 64-bit mask that adds the 5th
// bit (16) to the selected bytes. The -16 offset is taken off in the integers: one more vpdpbusd
// of 16s with the activations gives 16 * sum per lane. The 256-bit kernel needs ~2x the ops per
// weight, which at 16 threads left V2-Lite's Q5_0 down projection compute-bound.
float dot_q5_0_x2(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockQ5_0*>(w);
  const auto* acts = static_cast<const ActBlockQ8*>(act);
  const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
  const __m512i low4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const int64_t nb = n / 32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const BlockQ5_0& b0 = blocks[i];
    const BlockQ5_0& b1 = blocks[i + 1];
    const __m256i q0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0.qs)));
    const __m256i q1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1.qs)));
    __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    u = _mm512_and_si512(_mm512_srlv_epi64(u, shift), low4);
    uint32_t h0, h1;
    std::memcpy(&h0, b0.qh, 4);
    std::memcpy(&h1, b1.qh, 4);
    const __mmask64 high = _cvtu64_mask64(uint64_t(h0) | (uint64_t(h1) << 32));
    u = _mm512_mask_add_epi8(u, high, u, sixteen);
    const __m512i a = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acts[i].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acts[i + 1].qs)), 1);
    const __m512i dot = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, a),
                                         _mm512_dpbusd_epi32(_mm512_setzero_si512(), sixteen, a));
    const __m512 scale = _mm512_mask_blend_ps(__mmask16(0xFF00), _mm512_set1_ps(fp16_to_float(b0.d) * acts[i].d),
                                              _mm512_set1_ps(fp16_to_float(b1.d) * acts[i + 1].d));
    if ((i & 2) == 0) acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc0);
    else acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc1);
  }
  float total = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  if (i < nb) total += dot_legacy<Q5_0Unpack>(32, &blocks[i], &acts[i]);  // odd block count
  return total;
}

void dot_q5_0_x2_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  if (n_acts >= kActsPerPass) return dot_legacy_many<Q5_0Unpack>(n, w, acts, n_acts, out);  // decodes once per 4
  for (int j = 0; j < n_acts; ++j) out[j] = dot_q5_0_x2(n, w, acts[j]);
}

// The 512-bit kernels (2 blocks per zmm): 75% -> 91% of bandwidth at V2-Lite's 1408-wide down
// experts against the 256-bit ones (bench/README.md).
RowKernels q5_0_row_kernels() { return {dot_q5_0_x2, dot_q5_0_x2_many}; }

}  // namespace

}  // namespace tandem::experts::avx512
