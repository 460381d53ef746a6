// Small scalar decoders of block fields (fp16 scales, packed 6-bit scales) shared by the kernel
// files. Internal linkage on purpose: each kernel file is compiled for a different ISA, and a
// shared inline definition could be emitted with the wrong instructions for another file.
#pragma once

#include <cstdint>
#include <cstring>

namespace tandem::experts {
namespace {

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 113;
      while ((mant & 0x400) == 0) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bfloat_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Q4_K / Q5_K: scale and min (6 bits each) of sub-block j (0..7) from the 12 packed bytes.
inline void k4_scale_min(const uint8_t* p, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = p[j] & 63;
    *min = p[j + 4] & 63;
  } else {
    *scale = (p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4);
    *min = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
  }
}

// Q3_K: signed scale of 16-element group i (0..15).
inline int q3k_scale(const uint8_t* p, int i) {
  const int low = i < 8 ? (p[i] & 0xF) : (p[i - 8] >> 4);
  const int high = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace
}  // namespace tandem::experts
