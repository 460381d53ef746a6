// AVX2 unpacking of K-quant super-blocks (for kquant_avx2.cpp) into eight 32-byte vectors of
// unsigned weights (one per 32 consecutive elements) plus int16 scale/min per 16-element group.
// Weights are made unsigned (Q6_K: q+32, Q3_K: q+4) for maddubs; the driver subtracts
// kOffset * scale * bsum to undo that.
#pragma once

#include "experts/kernels/x86_intrinsics.h"

#include "experts/kernels/kquant_scales_x86.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts {
namespace {

struct KBlockParts {
  __m256i q[8];
  alignas(32) int16_t scale[16];
  alignas(32) int16_t min[16];
  float d, dmin;
};

inline void store_scales(__m256i s, __m256i m, KBlockParts& o) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(o.scale), s);
  _mm256_store_si256(reinterpret_cast<__m256i*>(o.min), m);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 0x10 (or `value`) in every byte whose bit `bit` is set in `bits`.
inline __m256i bit_to_byte(__m256i bits, int bit, char value) {
  const __m256i mask = _mm256_set1_epi8(char(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bits, mask), mask),
                          _mm256_set1_epi8(value));
}

struct Q2KUnpack {
  using Block = BlockQ2_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlockParts& o) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i raw = load256(b.qs + 32 * h);
      o.q[4 * h + 0] = _mm256_and_si256(raw, m3);
      o.q[4 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 2), m3);
      o.q[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m3);
      o.q[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(raw, 6), m3);
    }
    __m256i s, m;
    q2k_scales_mins16(b.scales, s, m);
    store_scales(s, m, o);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q3KUnpack {
  using Block = BlockQ3_K;
  static constexpr int kOffset = 4;
  static constexpr bool kHasMin = false;
  static void unpack(const Block& b, KBlockParts& o) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i hm = load256(b.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i raw = load256(b.qs + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * j), m3);
        o.q[4 * h + j] = _mm256_or_si256(low, bit_to_byte(hm, 4 * h + j, 4));
      }
    }
    store_scales(q3k_scales16(b.scales), _mm256_setzero_si256(), o);
    o.d = fp16_to_float(b.d);
    o.dmin = 0;
  }
};

inline void k4_scales(const uint8_t* packed, KBlockParts& o) {
  __m256i s, m;
  k4_scales_mins16(packed, s, m);
  store_scales(s, m, o);
}

struct Q4KUnpack {
  using Block = BlockQ4_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlockParts& o) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int j = 0; j < 4; ++j) {
      const __m256i raw = load256(b.qs + 32 * j);
      o.q[2 * j] = _mm256_and_si256(raw, m4);
      o.q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    }
    k4_scales(b.scales, o);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q5KUnpack {
  using Block = BlockQ5_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void unpack(const Block& b, KBlockParts& o) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i qh = load256(b.qh);
    for (int j = 0; j < 4; ++j) {
      const __m256i raw = load256(b.qs + 32 * j);
      o.q[2 * j] = _mm256_or_si256(_mm256_and_si256(raw, m4), bit_to_byte(qh, 2 * j, 0x10));
      o.q[2 * j + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4),
                                       bit_to_byte(qh, 2 * j + 1, 0x10));
    }
    k4_scales(b.scales, o);
    o.d = fp16_to_float(b.d);
    o.dmin = fp16_to_float(b.dmin);
  }
};

struct Q6KUnpack {
  using Block = BlockQ6_K;
  static constexpr int kOffset = 32;
  static constexpr bool kHasMin = false;
  static void unpack(const Block& b, KBlockParts& o) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m30 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load256(b.ql + 64 * h), ql1 = load256(b.ql + 64 * h + 32);
      const __m256i qh = load256(b.qh + 32 * h);
      o.q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
      o.q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                       _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
      o.q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                       _mm256_and_si256(qh, m30));
      o.q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                       _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
    }
    store_scales(q6k_scales16(b.scales), _mm256_setzero_si256(), o);
    o.d = fp16_to_float(b.d);
    o.dmin = 0;
  }
};

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace tandem::experts
