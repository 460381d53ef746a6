// quantize_row then dequantize_row on random data: the normalised mean squared error must stay
// under a bound that matches the format's bit width. The bounds sit a little above what the
// reference quantizers measure (printed by the test), so a layout slip between encoder and
// decoder, or a worse scale search, fails here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem {
namespace {

struct Case {
  GgmlType type;
  double max_nmse;
};

// Measured on these rows (largest of offset 0 / 1, see the printout) and bounded ~25% above:
// f16 4.5e-8, bf16 2.8e-6, q8_0 3.0e-5, q8_K 4.9e-5, q6_K 2.9e-4, q5_0 1.9e-3, q5_1 1.5e-3,
// q5_K 1.25e-3, q4_0 7.8e-3, q4_1 6.2e-3, q4_K 5.0e-3, q3_K 2.2e-2, q2_K 6.9e-2, iq4_nl 5.6e-3,
// iq4_xs 5.7e-3, iq3_s 1.7e-2, iq3_xxs 3.2e-2, iq2_s 5.8e-2, iq2_xs 8.0e-2, iq2_xxs 0.110,
// iq1_m 0.172, iq1_s 0.200, tq2_0 / tq1_0 0.198.
const Case kCases[] = {
    {GgmlType::F32, 0.0},     {GgmlType::F16, 6e-8},    {GgmlType::BF16, 4e-6},
    {GgmlType::Q8_0, 4e-5},   {GgmlType::Q8_K, 6.5e-5}, {GgmlType::Q6_K, 4e-4},
    {GgmlType::Q5_0, 2.4e-3}, {GgmlType::Q5_1, 1.9e-3}, {GgmlType::Q5_K, 1.6e-3},
    {GgmlType::Q4_0, 1e-2},   {GgmlType::Q4_1, 8e-3},   {GgmlType::Q4_K, 6.3e-3},
    {GgmlType::Q3_K, 2.7e-2}, {GgmlType::Q2_K, 8.6e-2},   {GgmlType::IQ4_NL, 7e-3},
    {GgmlType::IQ4_XS, 7e-3},
    {GgmlType::IQ3_S, 2.1e-2}, {GgmlType::IQ3_XXS, 4e-2},  {GgmlType::IQ2_S, 7.3e-2},
    {GgmlType::IQ2_XS, 0.1},    {GgmlType::IQ2_XXS, 0.137}, {GgmlType::IQ1_M, 0.215},
    {GgmlType::IQ1_S, 0.25},    {GgmlType::TQ2_0, 0.247},   {GgmlType::TQ1_0, 0.247},
};

std::string name_of(GgmlType t) { return std::string(ggml_type_name(t)); }

// Gaussian values whose spread changes every 256 elements, plus an offset, so that both
// symmetric and min-carrying formats and the super-block scales are exercised.
std::vector<float> random_row(int64_t n, float offset, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> spread(0.05f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  float s = 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 256 == 0) s = spread(rng);
    x[size_t(i)] = s * (normal(rng) + offset);
  }
  return x;
}

double nmse(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += double(x[i] - y[i]) * double(x[i] - y[i]);
    ref += double(x[i]) * double(x[i]);
  }
  return err / ref;
}

std::vector<float> round_trip(GgmlType t, const std::vector<float>& x) {
  const int64_t n = int64_t(x.size());
  std::vector<uint8_t> q(ggml_row_bytes(t, uint64_t(n)));
  quantize_row(t, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

TEST(QuantRoundTrip, ErrorWithinBitWidthBound) {
  constexpr int64_t kN = 256 * 32;
  for (const float offset : {0.0f, 1.0f}) {
    const auto x = random_row(kN, offset, 1234 + uint32_t(offset));
    for (const Case& c : kCases) {
      const double e = nmse(x, round_trip(c.type, x));
      std::printf("  %-5s offset %.0f  nmse %.3e  (bound %.1e)\n", name_of(c.type).c_str(),
                  double(offset), e, c.max_nmse);
      EXPECT_LE(e, c.max_nmse) << name_of(c.type) << " offset " << offset;
    }
  }
}

TEST(QuantRoundTrip, MoreBitsMeansLessError) {
  // Orders the K-quants and the legacy families by their measured error: a swap means one of
  // them lost bits somewhere.
  const auto x = random_row(256 * 16, 0.0f, 99);
  const GgmlType k_order[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                              GgmlType::Q6_K, GgmlType::Q8_K};
  for (size_t i = 1; i < std::size(k_order); ++i)
    EXPECT_LT(nmse(x, round_trip(k_order[i], x)), nmse(x, round_trip(k_order[i - 1], x)))
        << name_of(k_order[i]) << " vs " << name_of(k_order[i - 1]);
  EXPECT_LT(nmse(x, round_trip(GgmlType::Q5_0, x)), nmse(x, round_trip(GgmlType::Q4_0, x)));
  EXPECT_LT(nmse(x, round_trip(GgmlType::Q8_0, x)), nmse(x, round_trip(GgmlType::Q5_0, x)));
}

TEST(QuantRoundTrip, ZeroRowStaysExactlyZero) {
  const std::vector<float> x(512, 0.0f);
  for (const Case& c : kCases) {
    const auto y = round_trip(c.type, x);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y[i], 0.0f) << name_of(c.type) << " element " << i;
  }
}

TEST(QuantRoundTrip, ConstantRowIsCloseForEveryType) {
  // A constant block is the degenerate case of every scale search (zero range).
  for (const float v : {0.75f, -2.5f}) {
    const std::vector<float> x(512, v);
    for (const Case& c : kCases) {
      const auto y = round_trip(c.type, x);
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], v, 0.01 * std::fabs(v)) << name_of(c.type) << " element " << i;
    }
  }
}

TEST(QuantRoundTrip, SmallIntegersOnTheGridAreExact) {
  // -4 .. 3.5 in steps of 0.5: exactly the grid of Q4_0 (d = -4 / -8) and Q4_1 (m = -4,
  // d = 7.5 / 15), and on the finer grid of Q5_0 (d = 0.25). The other formats' scales are not
  // powers of two here (e.g. Q8_0: 4 / 127), so they are not exact.
  std::vector<float> x(256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 16) - 8) * 0.5f;
  for (const GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::F16,
                           GgmlType::BF16}) {
    const auto y = round_trip(t, x);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], x[i], 1e-6) << name_of(t) << " element " << i;
  }
}

TEST(QuantRoundTrip, Q8_KBlockSumsMatchQuants) {
  const auto x = random_row(512, 0.3f, 7);
  std::vector<uint8_t> q(ggml_row_bytes(GgmlType::Q8_K, 512));
  quantize_row(GgmlType::Q8_K, x.data(), q.data(), 512);
  for (int b = 0; b < 2; ++b) {
    const uint8_t* blk = q.data() + 292 * b;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int e = 0; e < 16; ++e) sum += int8_t(blk[4 + 16 * g + e]);
      int16_t bsum;
      std::memcpy(&bsum, blk + 260 + 2 * g, 2);
      EXPECT_EQ(bsum, sum) << "block " << b << " group " << g;
    }
  }
}

}  // namespace
}  // namespace tandem
