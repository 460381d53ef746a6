// Round-to-nearest encoders of the 32-element legacy blocks (layouts: dequantize_legacy.cpp).
// Scales are rounded to f16 first and the quants computed against the rounded scale, so the
// stored block is the best RTN encoding of what the decoder will actually multiply by.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/rounding.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

// The element of largest magnitude, with its sign.
float signed_extreme(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  return m;
}

// A block's f16 field and the value the decoder will read back from it.
struct StoredF16 {
  uint16_t bits;
  float value;
};

StoredF16 as_f16(float f) {
  const uint16_t bits = f32_to_f16(f);
  return {bits, f16_to_f32(bits)};
}

// Symmetric 4/5-bit blocks map the extreme onto the lowest level (-8 / -16), which the
// asymmetric integer range -2^(b-1)..2^(b-1)-1 reaches on one side only. q gets the stored
// (offset) quants; returns the f16 scale.
uint16_t encode_symmetric(const float* x, int offset, int* q) {
  const StoredF16 d = as_f16(signed_extreme(x, kQK) / -float(offset));
  for (int j = 0; j < kQK; ++j)
    q[j] = quantize_value(x[j], d.value, -offset, offset - 1) + offset;
  return d.bits;
}

struct ScaleMinBits {
  uint16_t d, m;
};

ScaleMinBits encode_min_max(const float* x, int qmax, int* q) {
  const auto [lo, hi] = std::minmax_element(x, x + kQK);
  const StoredF16 m = as_f16(*lo);
  const StoredF16 d = as_f16((*hi - *lo) / float(qmax));
  for (int j = 0; j < kQK; ++j) q[j] = quantize_value(x[j] - m.value, d.value, 0, qmax);
  return {d.bits, m.bits};
}

// Low nibbles: elements 0..15; high nibbles: elements 16..31.
void pack_nibbles(const int* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = uint8_t((q[j] & 0xF) | ((q[j + kQK / 2] & 0xF) << 4));
}

void pack_high_bits(const int* q, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK; ++j) qh |= uint32_t((q[j] >> 4) & 1) << j;
  std::memcpy(qh_bytes, &qh, 4);
}

}  // namespace

void quantize_q4_0(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQK) {
    BlockQ4_0& blk = blocks[b];
    int q[kQK];
    blk.d = encode_symmetric(src, 8, q);
    pack_nibbles(q, blk.qs);
  }
}

void quantize_q4_1(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQK) {
    BlockQ4_1& blk = blocks[b];
    int q[kQK];
    const ScaleMinBits dm = encode_min_max(src, 15, q);
    blk.d = dm.d;
    blk.m = dm.m;
    pack_nibbles(q, blk.qs);
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ5_0*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQK) {
    BlockQ5_0& blk = blocks[b];
    int q[kQK];
    blk.d = encode_symmetric(src, 16, q);
    pack_nibbles(q, blk.qs);
    pack_high_bits(q, blk.qh);
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ5_1*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQK) {
    BlockQ5_1& blk = blocks[b];
    int q[kQK];
    const ScaleMinBits dm = encode_min_max(src, 31, q);
    blk.d = dm.d;
    blk.m = dm.m;
    pack_nibbles(q, blk.qs);
    pack_high_bits(q, blk.qh);
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQK) {
    BlockQ8_0& blk = blocks[b];
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(src[j]));
    const StoredF16 d = as_f16(amax / 127.0f);
    blk.d = d.bits;
    for (int j = 0; j < kQK; ++j) blk.qs[j] = int8_t(quantize_value(src[j], d.value, -127, 127));
  }
}

}  // namespace tandem::row_codecs
