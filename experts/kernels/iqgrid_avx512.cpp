// AVX-512 kernels for the lattice i-quants (iqgrid_kernels_x86.inc), 256-bit vectors with
// AVX-512BW/VL: a sub-block's 32 sign bits become a mask register and one vpmovm2b. VNNI does
// not pay here: every sub-block (or half) has its own scale, and maddubs + madd applies it in
// the pair-summing step where vpdpbusd would need a separate 32-bit multiply.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"

namespace tandem::experts::avx512 {
namespace {

// Byte j of the result: -1 where bit j of `bits` is set, +1 elsewhere.
inline __m256i sign_bytes(uint32_t bits) {
  return _mm256_or_si256(_mm256_movm_epi8(__mmask32(bits)), _mm256_set1_epi8(1));
}

#include "experts/kernels/iqgrid_kernels_x86.inc"

}  // namespace tandem::experts::avx512
