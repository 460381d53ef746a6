// Vector decoding of K-quant super-block scales into 16 int16 values, one per 16-element group
// (Q4_K/Q5_K repeat each 32-element sub-block's value twice), so that every K type feeds the same
// dot-product driver. Included by the AVX2 and AVX-512 kernel files; internal linkage keeps each
// file's copy compiled for its own ISA.
#pragma once

#include <cstdint>
#include <cstring>

#include "experts/kernels/block_fields.h"
#include "experts/kernels/x86_intrinsics.h"

namespace tandem::experts {
namespace {

inline float fp16_to_float(uint16_t h) { return _cvtsh_ss(h); }

// Q4_K / Q5_K: the 12 packed bytes hold eight 6-bit scales and eight 6-bit mins. Sub-blocks 0-3
// keep their low 6 bits in bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 keep their low 4
// bits in bytes 8-11 and their top 2 bits in the spare top bits of bytes 0-3 / 4-7.
inline void k4_scales_mins16(const uint8_t* packed, __m256i& scale16, __m256i& min16) {
  uint32_t u0, u1, u2;
  std::memcpy(&u0, packed, 4);
  std::memcpy(&u1, packed + 4, 4);
  std::memcpy(&u2, packed + 8, 4);
  const uint32_t s_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
  const uint32_t s_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
  const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
  const __m128i s = _mm_cvtsi64_si128(int64_t(uint64_t(s_lo) | uint64_t(s_hi) << 32));
  const __m128i m = _mm_cvtsi64_si128(int64_t(uint64_t(m_lo) | uint64_t(m_hi) << 32));
  scale16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(s, s));
  min16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
}

// Q2_K: one byte per 16-element group, scale in the low nibble and min in the high one.
inline void q2k_scales_mins16(const uint8_t* scales, __m256i& scale16, __m256i& min16) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales));
  const __m128i m4 = _mm_set1_epi8(0xF);
  scale16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
  min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
}

// Q3_K: sixteen signed 6-bit scales (rare type: a scalar loop is fine).
inline __m256i q3k_scales16(const uint8_t* packed) {
  alignas(32) int16_t s[16];
  for (int g = 0; g < 16; ++g) s[g] = int16_t(q3k_scale(packed, g));
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
}

// Q6_K: sixteen int8 scales.
inline __m256i q6k_scales16(const int8_t* scales) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
}

}  // namespace
}  // namespace tandem::experts
