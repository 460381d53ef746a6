// Hand-built blocks, byte by byte at the offsets of the on-disk layout, decoded and compared
// with values worked out by hand in the comments. Independent of the quantizers: this is what
// pins the bit layouts.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "runtime/quant/dequantize.h"

namespace tandem {
namespace {

// f16 bit patterns used below.
constexpr uint16_t kHalfQuarter = 0x3400;  // 0.25
constexpr uint16_t kHalfHalf = 0x3800;     // 0.5
constexpr uint16_t kHalfOne = 0x3C00;      // 1.0
constexpr uint16_t kHalfTwo = 0x4000;      // 2.0
constexpr uint16_t kHalfMinusOne = 0xBC00;  // -1.0

template <size_t N>
void put_u16(std::array<uint8_t, N>& b, size_t at, uint16_t v) {
  b[at] = uint8_t(v & 0xFF);
  b[at + 1] = uint8_t(v >> 8);
}

template <size_t N>
std::vector<float> decode(GgmlType t, const std::array<uint8_t, N>& bytes, int64_t n) {
  std::vector<float> out(size_t(n), std::numeric_limits<float>::quiet_NaN());
  dequantize_row(t, bytes.data(), out.data(), n);
  return out;
}

void expect_all(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "element " << i;
}

TEST(DequantizeBlock, F32PassesThrough) {
  const float src[3] = {1.5f, -0.0f, 3e38f};
  float out[3];
  dequantize_row(GgmlType::F32, src, out, 3);
  EXPECT_EQ(std::memcmp(src, out, sizeof src), 0);
}

TEST(DequantizeBlock, F16) {
  // 1, -2, smallest subnormal 2^-24, +inf, largest finite 65504.
  const std::array<uint8_t, 10> b = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C, 0xFF, 0x7B};
  const auto y = decode(GgmlType::F16, b, 5);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(y[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(y[4], 65504.0f);
}

TEST(DequantizeBlock, BF16) {
  // 0x3F80 = 1, 0x4049 = 3.140625, 0xFF80 = -inf, 0x0001 = smallest f32 subnormal * 2^16.
  const std::array<uint8_t, 8> b = {0x80, 0x3F, 0x49, 0x40, 0x80, 0xFF, 0x01, 0x00};
  const auto y = decode(GgmlType::BF16, b, 4);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 3.140625f);
  EXPECT_EQ(y[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(y[3], std::ldexp(1.0f, -133));
}

TEST(DequantizeBlock, Q4_0) {
  // d @0, qs @2: element j is the low nibble of qs[j], element j+16 its high nibble; y=(q-8)*d.
  std::array<uint8_t, 18> b{};
  put_u16(b, 0, kHalfTwo);
  for (int j = 0; j < 16; ++j) b[2 + j] = 0x88;  // all zero
  b[2 + 0] = 0x1F;   // e0 = (15-8)*2 = 14, e16 = (1-8)*2 = -14
  b[2 + 5] = 0x80;   // e5 = (0-8)*2 = -16, e21 = 0
  b[2 + 15] = 0x9A;  // e15 = (10-8)*2 = 4, e31 = (9-8)*2 = 2
  std::vector<float> want(32, 0.0f);
  want[0] = 14, want[16] = -14, want[5] = -16, want[15] = 4, want[31] = 2;
  expect_all(decode(GgmlType::Q4_0, b, 32), want);
}

TEST(DequantizeBlock, Q4_1) {
  // d @0, m @2, qs @4; y = q*d + m with d = 0.5, m = -1.
  std::array<uint8_t, 20> b{};
  put_u16(b, 0, kHalfHalf);
  put_u16(b, 2, kHalfMinusOne);
  b[4 + 3] = 0xF2;   // e3 = 2*0.5-1 = 0, e19 = 15*0.5-1 = 6.5
  b[4 + 15] = 0x1E;  // e15 = 14*0.5-1 = 6, e31 = 1*0.5-1 = -0.5
  std::vector<float> want(32, -1.0f);
  want[3] = 0, want[19] = 6.5f, want[15] = 6, want[31] = -0.5f;
  expect_all(decode(GgmlType::Q4_1, b, 32), want);
}

TEST(DequantizeBlock, Q5_0) {
  // d @0, qh @2 (u32 LE, bit i = bit 4 of element i), qs @6; y = (q-16)*d with d = 1.
  std::array<uint8_t, 22> b{};
  put_u16(b, 0, kHalfOne);
  b[2] = 0x01;  // bit 0  -> element 0
  b[4] = 0x02;  // bit 17 -> element 17
  b[5] = 0x80;  // bit 31 -> element 31
  b[6 + 0] = 0x35;   // e0 = (5|16)-16 = 5, e16 = 3-16 = -13
  b[6 + 1] = 0x4F;   // e1 = 15-16 = -1,    e17 = (4|16)-16 = 4
  b[6 + 15] = 0xC0;  // e15 = 0-16 = -16,   e31 = (12|16)-16 = 12
  std::vector<float> want(32, -16.0f);
  want[0] = 5, want[16] = -13, want[1] = -1, want[17] = 4, want[31] = 12;
  expect_all(decode(GgmlType::Q5_0, b, 32), want);
}

TEST(DequantizeBlock, Q5_1) {
  // d @0, m @2, qh @4, qs @8; y = q*d + m with d = 0.5, m = 1.
  std::array<uint8_t, 24> b{};
  put_u16(b, 0, kHalfHalf);
  put_u16(b, 2, kHalfOne);
  b[4 + 1] = 0x01;  // bit 8  -> element 8
  b[4 + 3] = 0x01;  // bit 24 -> element 24
  b[8 + 8] = 0x7A;  // e8 = (10|16)*0.5+1 = 14, e24 = (7|16)*0.5+1 = 12.5
  b[8 + 2] = 0x03;  // e2 = 3*0.5+1 = 2.5,      e18 = 1
  std::vector<float> want(32, 1.0f);
  want[8] = 14, want[24] = 12.5f, want[2] = 2.5f;
  expect_all(decode(GgmlType::Q5_1, b, 32), want);
}

TEST(DequantizeBlock, Q8_0) {
  // d @0, int8 qs @2; y = q*d with d = 0.25.
  std::array<uint8_t, 34> b{};
  put_u16(b, 0, kHalfQuarter);
  b[2 + 0] = 0x7F;   // 127 -> 31.75
  b[2 + 1] = 0x80;   // -128 -> -32
  b[2 + 2] = 0xFF;   // -1 -> -0.25
  b[2 + 31] = 0x06;  // 6 -> 1.5
  std::vector<float> want(32, 0.0f);
  want[0] = 31.75f, want[1] = -32, want[2] = -0.25f, want[31] = 1.5f;
  expect_all(decode(GgmlType::Q8_0, b, 32), want);
}

TEST(DequantizeBlock, Q2_K) {
  // scales @0 (16 bytes: low nibble scale, high nibble min), qs @16 (64), d @80, dmin @82.
  // y = d*scale*q - dmin*min. Element e: byte qs[32*(e/128) + e%32], bits 2*((e%128)/32).
  std::array<uint8_t, 84> b{};
  put_u16(b, 80, kHalfOne);
  put_u16(b, 82, kHalfHalf);
  int scale[16], min[16];
  for (int i = 0; i < 16; ++i) {
    scale[i] = i % 15 + 1;  // 1..15, 1
    min[i] = i % 4;
    b[i] = uint8_t(scale[i] | (min[i] << 4));
  }
  b[16 + 0] = 0xE4;       // lane 0 of half 0: q = 0, 1, 2, 3 for e0, e32, e64, e96
  b[16 + 32 + 17] = 0x1B;  // lane 17 of half 1: q = 3, 2, 1, 0 for e145, e177, e209, e241
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[size_t(e)] = -0.5f * float(min[e / 16]);  // q = 0
  want[0] = 0.0f;           // sub 0: 1*0 - 0
  want[32] = 2.0f;          // sub 2: 3*1 - 0.5*2
  want[64] = 10.0f;         // sub 4: 5*2 - 0
  want[96] = 20.0f;         // sub 6: 7*3 - 0.5*2
  want[145] = 29.5f;        // sub 9: 10*3 - 0.5*1
  want[177] = 22.5f;        // sub 11: 12*2 - 0.5*3
  want[209] = 13.5f;        // sub 13: 14*1 - 0.5*1
  want[241] = -1.5f;        // sub 15: 1*0 - 0.5*3
  expect_all(decode(GgmlType::Q2_K, b, 256), want);
}

TEST(DequantizeBlock, Q3_KScales) {
  // hmask @0 (32), qs @32 (64), scales @96 (12), d @108. With every hmask bit set and every
  // 2-bit quant 1, y = d * scale[e/16] and the test reads the 16 packed 6-bit scales.
  std::array<uint8_t, 110> b{};
  for (int i = 0; i < 32; ++i) b[size_t(i)] = 0xFF;
  for (int i = 0; i < 64; ++i) b[32 + size_t(i)] = 0x55;
  // Low nibbles: scales 0..7 in bytes 0..7 low, scales 8..15 in their high nibbles.
  const uint8_t low[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE};
  for (int i = 0; i < 8; ++i) b[96 + size_t(i)] = low[i];
  // Top 2 bits of scale i: byte 8 + i%4, bits 2*(i/4).
  b[96 + 8] = 0xE4;   // scales 0, 4, 8, 12 -> 0, 1, 2, 3
  b[96 + 9] = 0x1B;   // scales 1, 5, 9, 13 -> 3, 2, 1, 0
  b[96 + 10] = 0x00;  // scales 2, 6, 10, 14 -> 0
  b[96 + 11] = 0xFF;  // scales 3, 7, 11, 15 -> 3
  put_u16(b, 108, kHalfHalf);
  // Stored (low | high << 4) - 32, worked out per scale.
  const int scale[16] = {0 - 32,  50 - 32, 4 - 32,  54 - 32, 24 - 32, 42 - 32, 12 - 32, 62 - 32,
                         33 - 32, 19 - 32, 5 - 32,  55 - 32, 57 - 32, 11 - 32, 13 - 32, 63 - 32};
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[size_t(e)] = 0.5f * float(scale[e / 16]);
  expect_all(decode(GgmlType::Q3_K, b, 256), want);
}

TEST(DequantizeBlock, Q3_KQuants) {
  // All scales stored as 33 (= +1), d = 1, so y is the quant: low 2 bits - (hmask bit ? 0 : 4).
  std::array<uint8_t, 110> b{};
  for (int i = 0; i < 8; ++i) b[96 + size_t(i)] = 0x11;  // low nibbles 1
  for (int i = 8; i < 12; ++i) b[96 + size_t(i)] = 0xAA;  // top bits 2 -> 1 | 32 = 33
  put_u16(b, 108, kHalfOne);
  b[32 + 0] = 0xE4;   // half 0 lane 0: low bits 0, 1, 2, 3 for e0, e32, e64, e96
  b[0] = 0x0A;        // hmask lane 0, bits 1 and 3: e32 and e96 keep their value
  b[32 + 32 + 31] = 0x03;  // half 1 lane 31, quarter 0: e159 low bits 3
  b[31] = 0x90;            // hmask lane 31, bits 4 (e159) and 7 (e255)
  std::vector<float> want(256, -4.0f);
  want[0] = -4, want[32] = 1, want[64] = -2, want[96] = 3, want[159] = 3, want[255] = 0;
  expect_all(decode(GgmlType::Q3_K, b, 256), want);
}

// Q4_K / Q5_K scale bytes giving scales {1,2,3,4,17,35,53,7} and mins {5,6,7,8,2,20,38,56}:
// pairs 0..3 in the low 6 bits of bytes 0..3 / 4..7; pairs 4..7 take low nibbles from bytes
// 8..11 (scale low, min high) and their top 2 bits from the top of bytes 0..3 / 4..7.
constexpr uint8_t kK4Scales[12] = {0x41, 0x82, 0xC3, 0x04, 0x05, 0x46,
                                   0x87, 0xC8, 0x21, 0x43, 0x65, 0x87};
constexpr int kK4Scale[8] = {1, 2, 3, 4, 17, 35, 53, 7};
constexpr int kK4Min[8] = {5, 6, 7, 8, 2, 20, 38, 56};
// Scale bytes for scale 1, min 0 in every sub-block.
constexpr uint8_t kK4Unit[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};

TEST(DequantizeBlock, Q4_KScales) {
  // d @0, dmin @2, scales @4, qs @16. Every quant 1: y = 1*scale - 0.5*min.
  std::array<uint8_t, 144> b{};
  put_u16(b, 0, kHalfOne);
  put_u16(b, 2, kHalfHalf);
  std::memcpy(&b[4], kK4Scales, 12);
  for (int i = 0; i < 128; ++i) b[16 + size_t(i)] = 0x11;
  // Per sub-block: -1.5, -1, -0.5, 0, 16, 25, 34, -21.
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e)
    want[size_t(e)] = float(kK4Scale[e / 32]) - 0.5f * float(kK4Min[e / 32]);
  EXPECT_EQ(want[0], -1.5f);
  EXPECT_EQ(want[7 * 32], -21.0f);
  expect_all(decode(GgmlType::Q4_K, b, 256), want);
}

TEST(DequantizeBlock, Q4_KQuants) {
  // Unit scales, zero mins, d = 1: y = q. Chunk c (64 elements) uses qs[32c .. 32c+31]:
  // low nibble -> element 64c + l, high nibble -> 64c + 32 + l.
  std::array<uint8_t, 144> b{};
  put_u16(b, 0, kHalfOne);
  put_u16(b, 2, kHalfOne);
  std::memcpy(&b[4], kK4Unit, 12);
  b[16 + 0] = 0xA3;           // e0 = 3, e32 = 10
  b[16 + 64 + 5] = 0x7F;      // chunk 2 lane 5: e133 = 15, e165 = 7
  b[16 + 127] = 0x90;         // chunk 3 lane 31: e223 = 0, e255 = 9
  std::vector<float> want(256, 0.0f);
  want[0] = 3, want[32] = 10, want[133] = 15, want[165] = 7, want[255] = 9;
  expect_all(decode(GgmlType::Q4_K, b, 256), want);
}

TEST(DequantizeBlock, Q5_KScales) {
  // d @0, dmin @2, scales @4, qh @16 (32), qs @48 (128). Nibbles 0, every high bit set: q = 16,
  // y = 16*scale - 0.5*min.
  std::array<uint8_t, 176> b{};
  put_u16(b, 0, kHalfOne);
  put_u16(b, 2, kHalfHalf);
  std::memcpy(&b[4], kK4Scales, 12);
  for (int i = 0; i < 32; ++i) b[16 + size_t(i)] = 0xFF;
  // Per sub-block: 13.5, 29, 44.5, 60, 271, 550, 829, 84.
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e)
    want[size_t(e)] = 16.0f * float(kK4Scale[e / 32]) - 0.5f * float(kK4Min[e / 32]);
  EXPECT_EQ(want[6 * 32], 829.0f);
  expect_all(decode(GgmlType::Q5_K, b, 256), want);
}

TEST(DequantizeBlock, Q5_KQuants) {
  // Unit scales, d = 1: y = q. Bit 4 of element 64c + 32u + l is bit 2c + u of qh[l].
  std::array<uint8_t, 176> b{};
  put_u16(b, 0, kHalfOne);
  put_u16(b, 2, kHalfOne);
  std::memcpy(&b[4], kK4Unit, 12);
  b[48 + 0] = 0xA3;       // e0 = 3,  e32 = 10
  b[16 + 0] = 0x02;       // qh lane 0 bit 1: e32 = 10|16 = 26
  b[48 + 64 + 5] = 0x7F;  // e133 = 15, e165 = 7
  b[16 + 5] = 0x10;       // qh lane 5 bit 4 (chunk 2 low): e133 = 31
  b[48 + 127] = 0x90;     // e223 = 0, e255 = 9
  b[16 + 31] = 0xC0;      // qh lane 31 bits 6, 7: e223 = 16, e255 = 25
  std::vector<float> want(256, 0.0f);
  want[0] = 3, want[32] = 26, want[133] = 31, want[165] = 7, want[223] = 16, want[255] = 25;
  expect_all(decode(GgmlType::Q5_K, b, 256), want);
}

TEST(DequantizeBlock, Q6_KScales) {
  // ql @0 (128), qh @128 (64), int8 scales @192 (16), d @208. Nibbles 1 and high bits 2 give
  // q = 1 | 32 = 33 everywhere, y = d * scale * (33 - 32).
  std::array<uint8_t, 210> b{};
  for (int i = 0; i < 128; ++i) b[size_t(i)] = 0x11;
  for (int i = 0; i < 64; ++i) b[128 + size_t(i)] = 0xAA;
  const int scale[16] = {-128, -100, -64, -1, 0, 1, 2, 3, 10, 20, 30, 40, 50, 60, 100, 127};
  for (int i = 0; i < 16; ++i) b[192 + size_t(i)] = uint8_t(int8_t(scale[i]));
  put_u16(b, 208, kHalfHalf);
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[size_t(e)] = 0.5f * float(scale[e / 16]);
  expect_all(decode(GgmlType::Q6_K, b, 256), want);
}

TEST(DequantizeBlock, Q6_KQuants) {
  // Unit scales, d = 1: y = q - 32. In half h, quarter k, lane l: low 4 bits from
  // ql[64h + 32(k&1) + l] (low nibble for k < 2, high for k >= 2), top 2 bits from
  // qh[32h + l] >> 2k.
  std::array<uint8_t, 210> b{};
  for (int i = 0; i < 16; ++i) b[192 + size_t(i)] = 1;
  put_u16(b, 208, kHalfOne);
  b[0] = 0x5A;         // e0 low 10, e64 low 5
  b[32] = 0xC3;        // e32 low 3, e96 low 12
  b[128] = 0xE4;       // high bits: e0 0, e32 1, e64 2, e96 3
  b[64 + 63] = 0xF0;   // half 1 lane 31: e191 low 0, e255 low 15
  b[128 + 63] = 0xC0;  // e255 high 3
  b[64 + 31] = 0x07;   // e159 low 7, e223 low 0
  std::vector<float> want(256, -32.0f);
  want[0] = 10 - 32;         // -22
  want[32] = (3 | 16) - 32;  // -13
  want[64] = (5 | 32) - 32;  // 5
  want[96] = (12 | 48) - 32;  // 28
  want[255] = 63 - 32;       // 31
  want[159] = 7 - 32;        // -25
  expect_all(decode(GgmlType::Q6_K, b, 256), want);
}

TEST(DequantizeBlock, Q8_K) {
  // f32 d @0, int8 qs @4 (256), int16 bsums @260 (ignored by the decoder); y = d*q.
  std::array<uint8_t, 292> b{};
  const float d = 0.5f;
  std::memcpy(&b[0], &d, 4);
  for (int e = 0; e < 256; ++e) b[4 + size_t(e)] = uint8_t(int8_t(e - 128));
  for (int i = 260; i < 292; ++i) b[size_t(i)] = 0xAB;
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[size_t(e)] = 0.5f * float(e - 128);
  expect_all(decode(GgmlType::Q8_K, b, 256), want);
}

TEST(DequantizeBlock, BlocksFollowEachOther) {
  // Two Q4_0 blocks: the second block's d and quants land in elements 32..63.
  std::array<uint8_t, 36> b{};
  put_u16(b, 0, kHalfOne);
  for (int j = 0; j < 16; ++j) b[2 + size_t(j)] = 0x99;  // +1
  put_u16(b, 18, kHalfTwo);
  for (int j = 0; j < 16; ++j) b[20 + size_t(j)] = 0x77;  // -1 * 2
  std::vector<float> want(64, 1.0f);
  for (int e = 32; e < 64; ++e) want[size_t(e)] = -2.0f;
  expect_all(decode(GgmlType::Q4_0, b, 64), want);
}

}  // namespace
}  // namespace tandem
