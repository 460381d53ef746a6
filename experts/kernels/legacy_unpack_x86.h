// AVX2 unpacking of a 32-element legacy block into 32 unsigned weights u with
//   w = d * u + bias,  bias = m - d * kOffset,
// shared by legacy_avx2.cpp and legacy_avx512.cpp (internal linkage, see kquant_unpack_x86.h).
// Q8_0 is signed and handled apart by its callers.
#pragma once

#include "experts/kernels/x86_intrinsics.h"

#include <cstring>

#include "experts/kernels/kquant_scales_x86.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts {
namespace {

inline __m256i nibbles_to_bytes(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0xF));
}

// 0x10 in byte i where bit i of the 32-bit little-endian qh is set.
inline __m256i high_bits_to_bytes(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(int(h)), _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                                  2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

struct Q4_0Unpack {
  using Block = BlockQ4_0;
  static __m256i unpack(const Block& b, float* d, float* bias) {
    *d = fp16_to_float(b.d);
    *bias = -8.0f * *d;
    return nibbles_to_bytes(b.qs);
  }
};
struct Q4_1Unpack {
  using Block = BlockQ4_1;
  static __m256i unpack(const Block& b, float* d, float* bias) {
    *d = fp16_to_float(b.d);
    *bias = fp16_to_float(b.m);
    return nibbles_to_bytes(b.qs);
  }
};
struct Q5_0Unpack {
  using Block = BlockQ5_0;
  static __m256i unpack(const Block& b, float* d, float* bias) {
    *d = fp16_to_float(b.d);
    *bias = -16.0f * *d;
    return _mm256_or_si256(nibbles_to_bytes(b.qs), high_bits_to_bytes(b.qh));
  }
};
struct Q5_1Unpack {
  using Block = BlockQ5_1;
  static __m256i unpack(const Block& b, float* d, float* bias) {
    *d = fp16_to_float(b.d);
    *bias = fp16_to_float(b.m);
    return _mm256_or_si256(nibbles_to_bytes(b.qs), high_bits_to_bytes(b.qh));
  }
};

}  // namespace
}  // namespace tandem::experts
