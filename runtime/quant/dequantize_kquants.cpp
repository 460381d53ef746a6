// Decoders of the 256-element K-quant super-blocks. Each super-block has an f16 scale d (and
// for the asymmetric types an f16 dmin) that multiplies small per-sub-block integer scales.
//
// Q2_K, Q3_K and Q6_K walk the super-block in two halves of 128; within a half, byte l of a
// 32-byte slice carries one element of each of the four 32-element quarters (2 bits each for
// Q2_K/Q3_K at shifts 0, 2, 4, 6). Q4_K and Q5_K walk it in four chunks of 64: byte l of a
// 32-byte slice holds element l in its low nibble and element l + 32 in its high nibble.
#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/row_codecs.h"
#include "runtime/quant/scale_packing.h"

namespace tandem::row_codecs {

// Q2_K: y = d * (scale & 0xF) * q - dmin * (scale >> 4), q in 0..3, 16 sub-blocks of 16.
void dequantize_q2_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ2_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ2_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    int sub = 0;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = blk.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int group = 0; group < 2; ++group, ++sub) {  // 16 elements per sub-block
          const float dl = d * float(blk.scales[sub] & 0xF);
          const float ml = dmin * float(blk.scales[sub] >> 4);
          for (int l = 16 * group; l < 16 * group + 16; ++l)
            *dst++ = dl * float((q[l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: y = d * scale * q, scale in -32..31 (6 bits, +32), q = low 2 bits from qs minus 4
// unless the element's bit in hmask is set. hmask byte l, bit (4 * half + quarter).
void dequantize_q3_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ3_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ3_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    int sub = 0;
    uint8_t high_bit = 1;
    for (int half = 0; half < 2; ++half) {
      const uint8_t* q = blk.qs + 32 * half;
      for (int shift = 0; shift < 8; shift += 2, high_bit = uint8_t(high_bit << 1)) {
        for (int group = 0; group < 2; ++group, ++sub) {
          const float dl = d * float(unpack_q3k_scale(blk.scales, sub));
          for (int l = 16 * group; l < 16 * group + 16; ++l) {
            const int low = (q[l] >> shift) & 3;
            const int value = low - ((blk.hmask[l] & high_bit) ? 0 : 4);
            *dst++ = dl * float(value);
          }
        }
      }
    }
  }
}

// Q4_K: y = d * scale * q - dmin * min, q in 0..15, 8 sub-blocks of 32 with 6-bit scale/min.
void dequantize_q4_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ4_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    for (int chunk = 0; chunk < 4; ++chunk) {
      const uint8_t* q = blk.qs + 32 * chunk;
      const ScaleMin6 lo = unpack_k4_scale_min(blk.scales, 2 * chunk);
      const ScaleMin6 hi = unpack_k4_scale_min(blk.scales, 2 * chunk + 1);
      const float d_lo = d * float(lo.scale), m_lo = dmin * float(lo.min);
      const float d_hi = d * float(hi.scale), m_hi = dmin * float(hi.min);
      for (int l = 0; l < 32; ++l) *dst++ = d_lo * float(q[l] & 0xF) - m_lo;
      for (int l = 0; l < 32; ++l) *dst++ = d_hi * float(q[l] >> 4) - m_hi;
    }
  }
}

// Q5_K: Q4_K plus a fifth bit (value 16) per element: qh byte l, bit 2 * chunk for the low
// nibble's element and bit 2 * chunk + 1 for the high nibble's.
void dequantize_q5_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ5_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    for (int chunk = 0; chunk < 4; ++chunk) {
      const uint8_t* q = blk.qs + 32 * chunk;
      const ScaleMin6 lo = unpack_k4_scale_min(blk.scales, 2 * chunk);
      const ScaleMin6 hi = unpack_k4_scale_min(blk.scales, 2 * chunk + 1);
      const float d_lo = d * float(lo.scale), m_lo = dmin * float(lo.min);
      const float d_hi = d * float(hi.scale), m_hi = dmin * float(hi.min);
      const int bit_lo = 2 * chunk, bit_hi = 2 * chunk + 1;
      for (int l = 0; l < 32; ++l)
        *dst++ = d_lo * float((q[l] & 0xF) | (((blk.qh[l] >> bit_lo) & 1) << 4)) - m_lo;
      for (int l = 0; l < 32; ++l)
        *dst++ = d_hi * float((q[l] >> 4) | (((blk.qh[l] >> bit_hi) & 1) << 4)) - m_hi;
    }
  }
}

// Q6_K: y = d * scale * (q - 32), q 6 bits, 16 int8 scales (one per 16 elements). In each half,
// quarter k takes its low 4 bits from ql[l + 32 * (k & 1)] (low nibble for k < 2, high for
// k >= 2) and its high 2 bits from qh[l] at bit 2 * k.
void dequantize_q6_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ6_K& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk.ql + 64 * half;
      const uint8_t* qh = blk.qh + 32 * half;
      const int8_t* sc = blk.scales + 8 * half;
      for (int quarter = 0; quarter < 4; ++quarter) {
        const int nibble_shift = quarter < 2 ? 0 : 4;
        const uint8_t* low_src = ql + 32 * (quarter & 1);
        for (int l = 0; l < 32; ++l) {
          const int low = (low_src[l] >> nibble_shift) & 0xF;
          const int high = (qh[l] >> (2 * quarter)) & 3;
          const int value = (low | (high << 4)) - 32;
          *dst++ = d * float(sc[2 * quarter + l / 16]) * float(value);
        }
      }
    }
  }
}

// Q8_K: y = d * q with an f32 d; bsums are a cache for dot products and play no part here.
void dequantize_q8_k(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockQ8_K& blk = blocks[b];
    const float d = blk.d;
    for (int j = 0; j < kQKK; ++j) *dst++ = d * float(blk.qs[j]);
  }
}

}  // namespace tandem::row_codecs
