// Bit packing of the 6-bit sub-block scales shared by encoder and decoder:
//  - Q4_K / Q5_K: 8 (scale, min) pairs of 6 bits in 12 bytes. Pairs 0..3 sit in the low 6 bits of
//    bytes 0..3 (scale) and 4..7 (min); pairs 4..7 put their low nibbles in bytes 8..11 (scale low,
//    min high) and their top 2 bits in the spare top bits of bytes 0..3 (scale) and 4..7 (min).
//  - Q3_K: 16 scales of 6 bits (stored +32) in 12 bytes. Low nibbles: scales 0..7 in the low
//    nibbles of bytes 0..7, scales 8..15 in their high nibbles. Top 2 bits of scale i: byte
//    8 + i%4, bit position 2*(i/4).
#pragma once

#include <cstdint>

namespace tandem {

struct ScaleMin6 {
  uint8_t scale;  // 0..63
  uint8_t min;    // 0..63
};

inline ScaleMin6 unpack_k4_scale_min(const uint8_t* packed, int j) {
  if (j < 4) return {uint8_t(packed[j] & 63), uint8_t(packed[j + 4] & 63)};
  const uint8_t scale = uint8_t((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
  const uint8_t min = uint8_t((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  return {scale, min};
}

// packed must start zeroed; scale and min must be < 64.
inline void pack_k4_scale_min(uint8_t* packed, int j, uint8_t scale, uint8_t min) {
  if (j < 4) {
    packed[j] = uint8_t((packed[j] & 0xC0) | scale);
    packed[j + 4] = uint8_t((packed[j + 4] & 0xC0) | min);
    return;
  }
  packed[j + 4] = uint8_t((scale & 0xF) | ((min & 0xF) << 4));
  packed[j - 4] = uint8_t(packed[j - 4] | ((scale >> 4) << 6));
  packed[j] = uint8_t(packed[j] | ((min >> 4) << 6));
}

// Signed scale of Q3_K sub-block i (0..15): the stored 6-bit value minus 32.
inline int unpack_q3k_scale(const uint8_t* packed, int i) {
  const int low = i < 8 ? (packed[i] & 0xF) : (packed[i - 8] >> 4);
  const int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// packed must start zeroed; scale must be in -32..31.
inline void pack_q3k_scale(uint8_t* packed, int i, int scale) {
  const unsigned stored = unsigned(scale + 32);
  if (i < 8)
    packed[i] = uint8_t(packed[i] | (stored & 0xF));
  else
    packed[i - 8] = uint8_t(packed[i - 8] | ((stored & 0xF) << 4));
  packed[8 + i % 4] = uint8_t(packed[8 + i % 4] | ((stored >> 4) << (2 * (i / 4))));
}

}  // namespace tandem
