// Hand-built blocks of the lattice i-quants and ternary types: the expected values are worked
// out by hand from the format definition (block_formats.h) and written as numbers. Codebook
// entries used (bytes little-endian, checked in iq_grids_test):
//   IQ2 grids [1] = {43,8,8,8,8,8,8,8}; IQ2_XS [300] = {8,25,25,8,8,25,8,25};
//   IQ2_S [700] = {8,8,8,43,43,8,25,25}; IQ3_XXS [1] = {20,4,4,4}, [200] = {4,62,4,44};
//   IQ3_S [1] = {3,1,1,1}, [400] = {7,9,15,9}; IQ1_S [0] = all -1, [1] = {1,-1,-1,-1,-1,-1,-1,-1},
//   [1500] = {0,-1,-1,0,-1,0,-1,1}.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/dequantize.h"

namespace tandem {
namespace {

template <typename Block>
std::vector<float> decode(GgmlType t, const Block& b) {
  std::vector<float> y(kQKK);
  dequantize_row(t, &b, y.data(), kQKK);
  return y;
}

void expect_run(const std::vector<float>& y, int first, std::vector<float> want) {
  for (size_t j = 0; j < want.size(); ++j) EXPECT_FLOAT_EQ(y[size_t(first) + j], want[j]) << "element " << first + int(j);
}

TEST(IqGridBlocks, Iq2Xxs) {
  BlockIQ2_XXS b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(0.5f);
  // Run 1: grid bytes {1, 0, 0, 0}; signs of group 0 = 0000001 (parity adds element 7), group 1 =
  // 0000011; scale 5 -> 0.5 * 5.5 / 4 = 0.6875.
  uint8_t idx[4] = {1, 0, 0, 0};
  std::memcpy(&b.qs[4], idx, 4);
  const uint32_t aux = 1u | (3u << 7) | (5u << 28);
  std::memcpy(&b.qs[6], &aux, 4);
  const auto y = decode(GgmlType::IQ2_XXS, b);
  expect_run(y, 32, {-29.5625f, 5.5f, 5.5f, 5.5f, 5.5f, 5.5f, 5.5f, -5.5f});
  expect_run(y, 40, {-5.5f, -5.5f, 5.5f, 5.5f});
  expect_run(y, 0, {0.5f, 0.5f});  // run 0: grid 0 (all 8), scale 0 -> 0.5 * 0.5 / 4
}

TEST(IqGridBlocks, Iq2Xs) {
  BlockIQ2_XS b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(1.0f);
  // Group 5: index 300, signs 0000100 (+ element 7 for parity); its 16 takes the low nibble of
  // scales[1] = 7 -> 7.5 / 4 = 1.875. Group 6 (next 16) the high nibble 2 -> 0.625.
  b.qs[5] = uint16_t(300 | (4 << 9));
  b.scales[1] = 0x27;
  const auto y = decode(GgmlType::IQ2_XS, b);
  expect_run(y, 40, {15, 46.875f, -46.875f, 15, 15, 46.875f, 15, -46.875f});
  expect_run(y, 48, {5, 5});
  expect_run(y, 0, {1, 1});  // grid 0, scale 0 -> 0.125 * 8
}

TEST(IqGridBlocks, Iq2S) {
  BlockIQ2_S b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(1.0f);
  // Group 6: index 700 = 0x2BC (high bits 2 at bits 4-5 of qh[1]), explicit signs 10000001,
  // scale: high nibble of scales[1] = 3 -> 3.5 / 4 = 0.875.
  b.qs[6] = 0xBC;
  b.qh[1] = 2 << 4;
  b.qs[32 + 6] = 0x81;
  b.scales[1] = 0x30;
  const auto y = decode(GgmlType::IQ2_S, b);
  expect_run(y, 48, {-7, 7, 7, 37.625f, 37.625f, 7, 21.875f, -21.875f});
  expect_run(y, 56, {7, 7});  // group 7 shares group 6's 16: grid 0 (all 8), no signs
  expect_run(y, 32, {1, 1});  // group 4: the low nibble 0 -> 0.125 * 8
}

TEST(IqGridBlocks, Iq3Xxs) {
  BlockIQ3_XXS b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(1.0f);
  // Run 2, group 1 (elements 72-79): points 200 and 1; signs 0000010 (+ element 7 for parity);
  // scale 6 -> 6.5 / 2 = 3.25.
  b.qs[16 + 2] = 200;
  b.qs[16 + 3] = 1;
  const uint32_t aux = (2u << 7) | (6u << 28);
  std::memcpy(&b.qs[64 + 8], &aux, 4);
  const auto y = decode(GgmlType::IQ3_XXS, b);
  expect_run(y, 72, {13, -201.5f, 13, 143, 65, 13, 13, -13});
  expect_run(y, 64, {13, 13});  // group 0 of run 2: grid 0 (all 4)
  expect_run(y, 0, {1, 1});     // run 0: scale 0 -> 0.25 * 4
}

TEST(IqGridBlocks, Iq3S) {
  BlockIQ3_S b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(0.5f);
  // Run 3: point 5 = index 400 = 0x190 (bit 8 in bit 5 of qh[3]), signs: high nibble of
  // signs[14] = 0101; point 4 = index 1, low nibble 0. Scale: high nibble of scales[1] = 4 ->
  // 0.5 * 9 = 4.5.
  b.qs[8 * 3 + 5] = 0x90;
  b.qh[3] = 1 << 5;
  b.qs[8 * 3 + 4] = 1;
  b.signs[14] = 0x50;
  b.scales[1] = 0x40;
  const auto y = decode(GgmlType::IQ3_S, b);
  expect_run(y, 116, {-31.5f, 40.5f, -67.5f, 40.5f});
  expect_run(y, 112, {13.5f, 4.5f, 4.5f, 4.5f});
  expect_run(y, 64, {0.5f, 0.5f});  // run 2: low nibble of scales[1] = 0 -> 0.5, grid 0 (all 1)
}

TEST(IqGridBlocks, Iq1S) {
  BlockIQ1_S b;
  std::memset(&b, 0, sizeof b);
  b.d = f32_to_f16(0.25f);
  // Run 4: scale 3 -> 0.25 * 7 = 1.75, delta negative (-1/8); group 2 index 1500 = 0x5DC (high
  // bits 5 at bits 6-8); group 0 index 1.
  b.qs[4 * 4 + 2] = 0xDC;
  b.qs[4 * 4 + 0] = 1;
  b.qh[4] = uint16_t(0x8000 | (3 << 12) | (5 << 6));
  const auto y = decode(GgmlType::IQ1_S, b);
  expect_run(y, 144, {-0.21875f, -1.96875f, -1.96875f, -0.21875f, -1.96875f, -0.21875f, -1.96875f, 1.53125f});
  expect_run(y, 128, {1.53125f, -1.96875f});
  expect_run(y, 0, {-0.21875f, -0.21875f});  // run 0: scale 0 -> 0.25, delta +1/8, grid 0 (all -1)
}

TEST(IqGridBlocks, Iq1M) {
  BlockIQ1_M b;
  std::memset(&b, 0, sizeof b);
  // Super-scale 0.5 = fp16 0x3800: nibbles 0, 0, 8, 3 in the top of scale words 0..3. Half 6
  // (groups 12, 13) takes bits 6-8 of word 1: 5 -> 0.5 * 11 = 5.5. Group 13: index 1500 with
  // the delta negative (nibble 0xD, high nibble of qh[6]); group 12: index 1, delta positive.
  uint16_t sc[4] = {0, uint16_t(5 << 6), 0x8000, 0x3000};
  std::memcpy(b.scales, sc, sizeof sc);
  b.qs[13] = 0xDC;
  b.qs[12] = 1;
  b.qh[6] = 0xD0;
  const auto y = decode(GgmlType::IQ1_M, b);
  expect_run(y, 104, {-0.6875f, -6.1875f, -6.1875f, -0.6875f, -6.1875f, -0.6875f, -6.1875f, 4.8125f});
  expect_run(y, 96, {6.1875f, -4.8125f});
  expect_run(y, 0, {-0.4375f, -0.4375f});  // scale 0 -> 0.5, grid 0 (all -1) + 1/8
}

TEST(IqGridBlocks, Tq2_0) {
  BlockTQ2_0 b;
  std::memset(b.qs, 0x55, sizeof b.qs);  // every element 1 - 1 = 0
  b.d = f32_to_f16(2.0f);
  b.qs[32 + 5] = 0x92;  // 2-bit fields low first: 2, 0, 1, 2 -> elements 133, 165, 197, 229
  const auto y = decode(GgmlType::TQ2_0, b);
  EXPECT_FLOAT_EQ(y[133], 2);
  EXPECT_FLOAT_EQ(y[165], -2);
  EXPECT_FLOAT_EQ(y[197], 0);
  EXPECT_FLOAT_EQ(y[229], 2);
  EXPECT_FLOAT_EQ(y[5], 0);
}

TEST(IqGridBlocks, Tq1_0) {
  BlockTQ1_0 b;
  std::memset(&b, 128, sizeof b);  // 128 = ceil(256 * 121 / 243): digits 1 1 1 1 1, all 0
  b.d = f32_to_f16(1.0f);
  // qs[3]: digits 2 0 1 1 0 (v = 174, byte ceil(174 * 256 / 243) = 184) -> elements 3, 35, 67,
  // 99, 131. qh[2]: digits 0 2 1 2 then a 0 (v = 69, byte 73) -> elements 242, 246, 250, 254.
  b.qs[3] = 184;
  b.qh[2] = 73;
  const auto y = decode(GgmlType::TQ1_0, b);
  const int idx[] = {3, 35, 67, 99, 131, 242, 246, 250, 254, 0, 200};
  const float want[] = {1, -1, 0, 0, -1, -1, 1, 0, 1, 0, 0};
  for (int k = 0; k < 11; ++k) EXPECT_FLOAT_EQ(y[size_t(idx[k])], want[k]) << "element " << idx[k];
}

}  // namespace
}  // namespace tandem
