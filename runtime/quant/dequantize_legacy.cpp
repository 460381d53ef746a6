// Decoders of the 32-element "legacy" blocks. In every one of them byte j of qs holds element j
// in its low nibble and element j + 16 in its high nibble; Q5 types add a fifth bit per element
// from the 32-bit little-endian word qh (bit i belongs to element i).
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {

void dequantize_q4_0(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) {
    const BlockQ4_0& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = float((blk.qs[j] & 0xF) - 8) * d;
      dst[j + kQK / 2] = float((blk.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) {
    const BlockQ4_1& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float m = f16_to_f32(blk.m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[j] = float(blk.qs[j] & 0xF) * d + m;
      dst[j + kQK / 2] = float(blk.qs[j] >> 4) * d + m;
    }
  }
}

namespace {
// The 5-bit quant of element j: nibble plus bit j of qh as bit 4.
int q5_value(const uint8_t* qs, uint32_t qh, int j) {
  const int nibble = j < kQK / 2 ? (qs[j] & 0xF) : (qs[j - kQK / 2] >> 4);
  return nibble | int(((qh >> j) & 1) << 4);
}
}  // namespace

void dequantize_q5_0(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) {
    const BlockQ5_0& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < kQK; ++j) dst[j] = float(q5_value(blk.qs, qh, j) - 16) * d;
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) {
    const BlockQ5_1& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const float m = f16_to_f32(blk.m);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < kQK; ++j) dst[j] = float(q5_value(blk.qs, qh, j)) * d + m;
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) {
    const BlockQ8_0& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < kQK; ++j) dst[j] = float(blk.qs[j]) * d;
  }
}

}  // namespace tandem::row_codecs
