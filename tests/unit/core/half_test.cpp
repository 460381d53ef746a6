// runtime/core/half.h: f16 and bf16 conversions checked exhaustively against the IEEE
// definitions (every 16-bit pattern, every rounding midpoint).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "runtime/core/half.h"

namespace tandem {
namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The value of a non-NaN f16 pattern straight from the definition; 0x7C00 reads as 2^16 so that
// the midpoint above the largest finite value can be formed.
double f16_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double mag = exp == 0 ? std::ldexp(double(mant), -24)
                              : std::ldexp(double(1024 + mant), exp - 25);
  return sign ? -mag : mag;
}

bool f16_is_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0; }

TEST(Half, F16DecodesEveryPatternByDefinition) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto p = uint16_t(h);
    const float f = f16_to_f32(p);
    if (f16_is_nan(p)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
    } else if ((p & 0x7FFF) == 0x7C00) {
      EXPECT_EQ(f, (p & 0x8000) ? -std::numeric_limits<float>::infinity()
                                : std::numeric_limits<float>::infinity());
    } else {
      ASSERT_EQ(double(f), f16_value(p)) << std::hex << h;
      EXPECT_EQ(std::signbit(f), (p & 0x8000) != 0) << std::hex << h;  // -0 keeps its sign
    }
  }
}

TEST(Half, F16RoundTripsEveryNonNanPattern) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto p = uint16_t(h);
    if (f16_is_nan(p)) {
      EXPECT_TRUE(f16_is_nan(f32_to_f16(f16_to_f32(p)))) << std::hex << h;  // payload may change
      continue;
    }
    ASSERT_EQ(f32_to_f16(f16_to_f32(p)), p) << std::hex << h;
  }
}

TEST(Half, F16RoundsToNearestEvenAtEveryMidpoint) {
  // Between each pair of neighbours (subnormals, normals, and the largest finite value and
  // infinity): the exact midpoint goes to the even pattern, one f32 ulp either side goes to the
  // nearer one. Midpoints of f16 values are exact in f32.
  for (uint16_t h = 0; h < 0x7C00; ++h) {
    const auto next = uint16_t(h + 1);
    const float mid = float((f16_value(h) + f16_value(next)) / 2);
    ASSERT_EQ(double(mid), (f16_value(h) + f16_value(next)) / 2);
    const uint16_t even = (h & 1) ? next : h;
    ASSERT_EQ(f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e30f)), next) << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), uint16_t(even | 0x8000)) << std::hex << h;
  }
}

TEST(Half, F16EdgeCases) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);  // just below the midpoint to 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);    // midpoint, ties to even = infinity
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // half of it: ties to even, 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);  // above the tie
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(float_of(1)), 0x0000);            // f32 subnormal underflows
  EXPECT_EQ(f32_to_f16(1.0f / 3.0f), 0x3555);
}

TEST(Half, Bf16RoundTripsEveryNonNanPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const auto p = uint16_t(b);
    const float f = bf16_to_f32(p);
    EXPECT_EQ(bits_of(f), b << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f)))) << std::hex << b;
      continue;
    }
    ASSERT_EQ(f32_to_bf16(f), p) << std::hex << b;
  }
}

TEST(Half, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(float_of(0x3F808000)), 0x3F80);  // tie, 0x3F80 is even
  EXPECT_EQ(f32_to_bf16(float_of(0x3F818000)), 0x3F82);  // tie, 0x3F82 is even
  EXPECT_EQ(f32_to_bf16(float_of(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(f32_to_bf16(float_of(0x3F807FFF)), 0x3F80);  // below the tie
  EXPECT_EQ(f32_to_bf16(float_of(0xBF818000)), 0xBF82);  // sign does not change rounding
  EXPECT_EQ(f32_to_bf16(float_of(0x3FFF8000)), 0x4000);  // carry into the exponent
  EXPECT_EQ(f32_to_bf16(float_of(0x7F7F8000)), 0x7F80);  // tie above the max: infinity
  EXPECT_EQ(f32_to_bf16(float_of(0x7F7F7FFF)), 0x7F7F);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
}

TEST(Half, Bf16Subnormals) {
  EXPECT_EQ(f32_to_bf16(float_of(0x00008000)), 0x0000);  // tie to even
  EXPECT_EQ(f32_to_bf16(float_of(0x00018000)), 0x0002);
  EXPECT_EQ(f32_to_bf16(float_of(0x00010000)), 0x0001);
  EXPECT_EQ(f32_to_bf16(float_of(0x007FFFFF)), 0x0080);  // rounds up into the normals
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));
}

TEST(Half, Bf16NanStaysNan) {
  // A signalling NaN whose payload sits only in the dropped low bits must not become infinity.
  const float snan = float_of(0x7F800001);
  const uint16_t b = f32_to_bf16(snan);
  EXPECT_TRUE(std::isnan(bf16_to_f32(b))) << std::hex << b;
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(float_of(0xFFC00000)))));
}

}  // namespace
}  // namespace tandem
