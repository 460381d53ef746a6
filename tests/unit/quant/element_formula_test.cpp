// Random blocks (every byte random, f16 scales random but finite) decoded by dequantize_row and
// by a per-element formula written here from the element index and the byte offsets of the
// layout. Together with the hand-built blocks this covers every bit of every field.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/half.h"
#include "runtime/quant/dequantize.h"

namespace tandem {
namespace {

float f16_at(const uint8_t* b, int at) { return f16_to_f32(uint16_t(b[at] | (b[at + 1] << 8))); }
int i8_at(const uint8_t* b, int at) { return int(int8_t(b[at])); }
int bit(const uint8_t* b, int byte, int pos) { return (b[byte] >> pos) & 1; }

// Element e of one block. Byte offsets follow block_formats.h.
using Formula = std::function<float(const uint8_t* b, int e)>;

float q4_0(const uint8_t* b, int e) {
  const int nib = e < 16 ? b[2 + e] & 15 : b[2 + e - 16] >> 4;
  return float(nib - 8) * f16_at(b, 0);
}
float q4_1(const uint8_t* b, int e) {
  const int nib = e < 16 ? b[4 + e] & 15 : b[4 + e - 16] >> 4;
  return float(nib) * f16_at(b, 0) + f16_at(b, 2);
}
float q5_0(const uint8_t* b, int e) {
  const int nib = e < 16 ? b[6 + e] & 15 : b[6 + e - 16] >> 4;
  return float((nib | bit(b, 2 + e / 8, e % 8) << 4) - 16) * f16_at(b, 0);
}
float q5_1(const uint8_t* b, int e) {
  const int nib = e < 16 ? b[8 + e] & 15 : b[8 + e - 16] >> 4;
  return float(nib | bit(b, 4 + e / 8, e % 8) << 4) * f16_at(b, 0) + f16_at(b, 2);
}
float q8_0(const uint8_t* b, int e) { return float(i8_at(b, 2 + e)) * f16_at(b, 0); }

// K-quants: h = half (128), k = quarter within the half (32), l = lane (0..31).
float q2_k(const uint8_t* b, int e) {
  const int h = e / 128, k = e % 128 / 32, l = e % 32;
  const int q = (b[16 + 32 * h + l] >> (2 * k)) & 3;
  const int sc = b[e / 16] & 15, m = b[e / 16] >> 4;
  return f16_at(b, 80) * float(sc) * float(q) - f16_at(b, 82) * float(m);
}
float q3_k(const uint8_t* b, int e) {
  const int h = e / 128, k = e % 128 / 32, l = e % 32, i = e / 16;
  const int low = (b[32 + 32 * h + l] >> (2 * k)) & 3;
  const int q = low - (bit(b, l, 4 * h + k) ? 0 : 4);
  const int s_low = i < 8 ? b[96 + i] & 15 : b[96 + i - 8] >> 4;
  const int s_high = (b[96 + 8 + i % 4] >> (2 * (i / 4))) & 3;
  return f16_at(b, 108) * float((s_low | s_high << 4) - 32) * float(q);
}
// The 6-bit scale (which = 0) or min (which = 1) of sub-block j of Q4_K/Q5_K, scales at 4.
int k4_field(const uint8_t* b, int j, int which) {
  const uint8_t* s = b + 4;
  if (j < 4) return s[j + 4 * which] & 63;
  const int low = which == 0 ? s[j + 4] & 15 : s[j + 4] >> 4;
  return low | (s[j - 4 + 4 * which] >> 6) << 4;
}
float q4_k(const uint8_t* b, int e) {
  const int c = e / 64, upper = e % 64 / 32, l = e % 32, j = e / 32;
  const int q = (b[16 + 32 * c + l] >> (4 * upper)) & 15;
  return f16_at(b, 0) * float(k4_field(b, j, 0)) * float(q) -
         f16_at(b, 2) * float(k4_field(b, j, 1));
}
float q5_k(const uint8_t* b, int e) {
  const int c = e / 64, upper = e % 64 / 32, l = e % 32, j = e / 32;
  const int q = ((b[48 + 32 * c + l] >> (4 * upper)) & 15) | bit(b, 16 + l, 2 * c + upper) << 4;
  return f16_at(b, 0) * float(k4_field(b, j, 0)) * float(q) -
         f16_at(b, 2) * float(k4_field(b, j, 1));
}
float q6_k(const uint8_t* b, int e) {
  const int h = e / 128, k = e % 128 / 32, l = e % 32;
  const int low = (b[64 * h + 32 * (k % 2) + l] >> (k < 2 ? 0 : 4)) & 15;
  const int high = (b[128 + 32 * h + l] >> (2 * k)) & 3;
  return f16_at(b, 208) * float(i8_at(b, 192 + e / 16)) * float((low | high << 4) - 32);
}
float q8_k(const uint8_t* b, int e) {
  float d;
  std::memcpy(&d, b, 4);
  return d * float(i8_at(b, 4 + e));
}

// The IQ4 codebook written out again, independent of block_formats.h.
constexpr int kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
float iq4_nl(const uint8_t* b, int e) {
  return f16_at(b, 0) * float(kIq4Levels[(b[2 + e % 16] >> (4 * (e / 16))) & 15]);
}
float iq4_xs(const uint8_t* b, int e) {
  const int r = e / 32, j = e % 32;
  const int low = (b[4 + r / 2] >> (4 * (r % 2))) & 15;
  const int high = ((b[2] | b[3] << 8) >> (2 * r)) & 3;
  const int level = (b[8 + 16 * r + j % 16] >> (4 * (j / 16))) & 15;
  return f16_at(b, 0) * float((low | high << 4) - 32) * float(kIq4Levels[level]);
}

struct Case {
  GgmlType type;
  int block_elems, block_bytes;
  std::vector<int> f16_fields;  // byte offsets of f16 scales, made finite
  Formula formula;
};

TEST(ElementFormula, RandomBlocksDecodeAsTheFormulaSays) {
  const std::vector<Case> cases = {
      {GgmlType::Q4_0, 32, 18, {0}, q4_0},       {GgmlType::Q4_1, 32, 20, {0, 2}, q4_1},
      {GgmlType::Q5_0, 32, 22, {0}, q5_0},       {GgmlType::Q5_1, 32, 24, {0, 2}, q5_1},
      {GgmlType::Q8_0, 32, 34, {0}, q8_0},       {GgmlType::Q2_K, 256, 84, {80, 82}, q2_k},
      {GgmlType::Q3_K, 256, 110, {108}, q3_k},   {GgmlType::Q4_K, 256, 144, {0, 2}, q4_k},
      {GgmlType::Q5_K, 256, 176, {0, 2}, q5_k},  {GgmlType::Q6_K, 256, 210, {208}, q6_k},
      {GgmlType::Q8_K, 256, 292, {}, q8_k},      {GgmlType::IQ4_NL, 32, 18, {0}, iq4_nl},
      {GgmlType::IQ4_XS, 256, 136, {0}, iq4_xs},
  };
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-3.0f, 3.0f);
  constexpr int kBlocks = 24;
  for (const Case& c : cases) {
    std::vector<uint8_t> bytes(size_t(kBlocks * c.block_bytes));
    for (auto& v : bytes) v = uint8_t(byte(rng));
    for (int b = 0; b < kBlocks; ++b) {
      uint8_t* blk = bytes.data() + b * c.block_bytes;
      for (const int at : c.f16_fields) {
        const uint16_t h = f32_to_f16(scale(rng));
        blk[at] = uint8_t(h & 0xFF);
        blk[at + 1] = uint8_t(h >> 8);
      }
      if (c.type == GgmlType::Q8_K) {
        const float d = scale(rng);
        std::memcpy(blk, &d, 4);
      }
    }
    std::vector<float> y(size_t(kBlocks * c.block_elems));
    dequantize_row(c.type, bytes.data(), y.data(), int64_t(y.size()));
    for (int b = 0; b < kBlocks; ++b)
      for (int e = 0; e < c.block_elems; ++e)
        ASSERT_FLOAT_EQ(y[size_t(b * c.block_elems + e)],
                        c.formula(bytes.data() + b * c.block_bytes, e))
            << ggml_type_name(c.type) << " block " << b << " element " << e;
  }
}

}  // namespace
}  // namespace tandem
