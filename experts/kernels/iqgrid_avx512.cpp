// AVX-512 kernels for the lattice i-quants (iqgrid_kernels_x86.inc), 256-bit vectors with
// AVX-512BW/VL/VNNI: a sub-block's 32 sign bits are a mask register for one masked subtract,
// and vpdpwssd applies the per-sub-block scale and accumulates in one op (vpdpbusd would need
// a separate 32-bit multiply for the scale).
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx512 {
namespace {

// Signs as a mask register: the activations where a bit is set are negated by a masked subtract.
using IqSigns = __mmask32;
inline IqSigns iq_signs(uint32_t bits) { return __mmask32(bits); }
inline __m256i iq_apply_signs(__m256i qa, IqSigns s) { return _mm256_mask_sub_epi8(qa, s, _mm256_setzero_si256(), qa); }
// VNNI: the scaled int16 pair sums go straight into the accumulator (vpdpwssd).
inline __m256i iq_scaled_add(__m256i acc, __m256i p16, __m256i scale16) {
  return _mm256_dpwssd_epi32(acc, p16, scale16);
}

#include "experts/kernels/iqgrid_kernels_x86.inc"

}  // namespace tandem::experts::avx512
