// AVX2 kernels for IQ4_NL / IQ4_XS: codebook shuffle, maddubs + madd per run, fp32 accumulation.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx2 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

#include "experts/kernels/iq4_kernels_x86.inc"

}  // namespace tandem::experts::avx2
