// AVX2 kernels for the lattice i-quants (iqgrid_kernels_x86.inc): grid points by scalar
// loads, signs expanded from bits by a byte shuffle and a test, maddubs + madd per sub-block.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx2 {
namespace {

// Signs as bytes: -1 where bit j of `bits` is set, +1 elsewhere (the operand of vpsignb).
using IqSigns = __m256i;
inline IqSigns iq_signs(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(1));
}
inline __m256i iq_apply_signs(__m256i qa, IqSigns s) { return _mm256_sign_epi8(qa, s); }
inline __m256i iq_scaled_add(__m256i acc, __m256i p16, __m256i scale16) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, scale16));
}

#include "experts/kernels/iqgrid_kernels_x86.inc"

}  // namespace tandem::experts::avx2
