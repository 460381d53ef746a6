// AVX-512 kernels for IQ4_NL / IQ4_XS: codebook shuffle, vpdpbusd (VNNI, 256-bit) per run.
#include "experts/activation_blocks.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

#include "experts/kernels/iq4_kernels_x86.inc"

}  // namespace tandem::experts::avx512
