// AVX-512 kernels for IQ4_NL / IQ4_XS: codebook shuffle, vpdpbusd (VNNI) per run. IQ4_XS has its
// own 512-bit kernel for one activation (two runs per zmm); the rest are the shared 256-bit ones.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

RowKernels iq4_xs_x2_kernels();
#define TANDEM_IQ4_XS_KERNELS iq4_xs_x2_kernels()

#include "experts/kernels/iq4_kernels_x86.inc"

namespace {

// The codebook plus 128: unsigned bytes for vpdpbusd; the bias comes back off as 128 times
// the activation sums (Q8K's bsums, two per run).
struct UnsignedLevels {
  alignas(16) uint8_t v[16];
};
constexpr UnsignedLevels unsigned_levels() {
  UnsignedLevels u{};
  for (int i = 0; i < 16; ++i) u.v[i] = uint8_t(kIq4nlValues[i] + 128);
  return u;
}
constexpr UnsignedLevels kUnsignedLevels = unsigned_levels();

// Two runs (64 weights) per zmm: each run's 16 nibble bytes broadcast to two 128-bit lanes,
// shifted by 0 / 4 per lane (low nibbles are elements 0-15, high 16-31) and masked, then one
// shuffle of the unsigned codebook; the 64 activations of the two runs are contiguous. Each
// run's dot times its scale in int32, the block's sum exact in integers.
float dot_iq4_xs_x2(int64_t n, const void* w, const void* act) {
  const auto* blocks = static_cast<const BlockIQ4_XS*>(w);
  const auto* acts = static_cast<const ActBlockQ8K*>(act);
  const __m512i table = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(kUnsignedLevels.v)));
  const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  double total = 0;
  for (int64_t i = 0; i < n / 256; ++i) {
    const BlockIQ4_XS& b = blocks[i];
    const ActBlockQ8K& a = acts[i];
    __m512i sum = _mm512_setzero_si512();
    int bias = 0;
    for (int k = 0; k < 4; ++k) {
      const __m256i q0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32 * k)));
      const __m256i q1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 32 * k + 16)));
      __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
      idx = _mm512_and_si512(_mm512_srlv_epi64(idx, shift), low4);
      const __m512i u = _mm512_shuffle_epi8(table, idx);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(a.qs + 64 * k));
      const int l0 = iq4_xs_scale(b, 2 * k), l1 = iq4_xs_scale(b, 2 * k + 1);
      const __m512i sc = _mm512_mask_blend_epi32(__mmask16(0xFF00), _mm512_set1_epi32(l0), _mm512_set1_epi32(l1));
      sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(dot, sc));
      bias += l0 * (a.bsums[4 * k] + a.bsums[4 * k + 1]) + l1 * (a.bsums[4 * k + 2] + a.bsums[4 * k + 3]);
    }
    const int isum = _mm512_reduce_add_epi32(sum) - 128 * bias;
    total += double(fp16_to_float(b.d) * a.d) * isum;
  }
  return float(total);
}

void dot_iq4_xs_x2_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  if (n_acts >= kIq4ActsPerPass) return dot_iq4_xs_many(n, w, acts, n_acts, out);  // decodes once per 4
  for (int j = 0; j < n_acts; ++j) out[j] = dot_iq4_xs_x2(n, w, acts[j]);
}

RowKernels iq4_xs_x2_kernels() { return {dot_iq4_xs_x2, dot_iq4_xs_x2_many}; }

}  // namespace

}  // namespace tandem::experts::avx512
