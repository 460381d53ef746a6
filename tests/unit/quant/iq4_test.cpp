// IQ4_NL and IQ4_XS: hand-built blocks decoded to values worked out by hand, and the quantizers'
// error against simple baselines, with and without importance weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem {
namespace {

TEST(Iq4Block, CodebookIsTheFormatTable) {
  const int want[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(kIq4nlValues[i], want[i]) << i;
}

TEST(Iq4Block, NlNibbleOrder) {
  // d = 0.5 (f16 0x3800); byte j = j | (15 - j) << 4: element j is level j, element 16 + j is
  // level 15 - j. E.g. element 0 = 0.5 * -127, element 16 = 0.5 * 113, element 31 = 0.5 * -127.
  uint8_t b[18] = {0x00, 0x38};
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(j | (15 - j) << 4);
  float y[32];
  dequantize_row(GgmlType::IQ4_NL, b, y, 32);
  EXPECT_EQ(y[0], -63.5f);
  EXPECT_EQ(y[8], 0.5f);
  EXPECT_EQ(y[15], 56.5f);
  EXPECT_EQ(y[16], 56.5f);
  EXPECT_EQ(y[23], 0.5f);  // j = 7, high nibble: level 15 - 7 = 8, the +1
  EXPECT_EQ(y[31], -63.5f);
}

TEST(Iq4Block, XsRunScales) {
  // d = 0.25 (f16 0x3400). Run scales l = {-32, 31, 0, 1, -1, 5, 16, -17}, stored l + 32 =
  // {0, 63, 32, 33, 31, 37, 48, 15}: low nibbles {0, 15, 0, 1, 15, 5, 0, 15} pair up into
  // scales_l = {0xF0, 0x10, 0x5F, 0xF0}; high 2 bits {0, 3, 2, 2, 1, 2, 3, 0} at bit 2r give
  // scales_h = 0x0C | 0x20 | 0x80 | 0x100 | 0x800 | 0x3000 = 0x39AC.
  uint8_t b[136] = {0x00, 0x34, 0xAC, 0x39, 0xF0, 0x10, 0x5F, 0xF0};
  const int l[8] = {-32, 31, 0, 1, -1, 5, 16, -17};
  for (int r = 0; r < 8; ++r)
    for (int j = 0; j < 16; ++j) b[8 + 16 * r + j] = uint8_t(((j + r) & 15) | (15 - j) << 4);
  float y[256];
  dequantize_row(GgmlType::IQ4_XS, b, y, 256);
  EXPECT_EQ(y[0], 0.25f * -32 * -127);       // run 0, level 0: 1016
  EXPECT_EQ(y[16], -904.0f);                 // run 0, high nibble 15: -8 * 113
  EXPECT_EQ(y[32], -806.0f);                 // run 1, level 1: 0.25 * 31 * -104
  EXPECT_EQ(y[64 + 5], 0.0f);                // run 2 has scale 0
  EXPECT_EQ(y[96 + 7], 6.25f);               // run 3, level 7 + 3 = 10: 0.25 * 1 * 25
  EXPECT_EQ(y[224 + 31], 539.75f);           // run 7, high nibble 0: 0.25 * -17 * -127
  for (int r = 0; r < 8; ++r)
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(y[32 * r + j], 0.25f * float(l[r]) * float(kIq4nlValues[(j + r) & 15])) << r << " " << j;
      EXPECT_EQ(y[32 * r + 16 + j], 0.25f * float(l[r]) * float(kIq4nlValues[15 - j])) << r << " " << j;
    }
}

std::vector<float> gaussian_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> spread(0.05f, 4.0f);
  std::vector<float> x(static_cast<size_t>(n));
  float s = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 256 == 0) s = spread(rng);
    x[size_t(i)] = s * normal(rng);
  }
  return x;
}

// sum_i w_i (x_i - y_i)^2 / sum_i w_i x_i^2 after a round trip through t.
double weighted_nmse(GgmlType t, const std::vector<float>& x, const std::vector<float>* w, bool use_w) {
  const int64_t n = int64_t(x.size());
  std::vector<uint8_t> q(ggml_row_bytes(t, uint64_t(n)));
  quantize_row(t, x.data(), q.data(), n, use_w && w ? w->data() : nullptr);
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), n);
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double wi = w ? (*w)[i] : 1.0;
    err += wi * double(x[i] - y[i]) * double(x[i] - y[i]);
    ref += wi * double(x[i]) * double(x[i]);
  }
  return err / ref;
}

// The obvious IQ4_NL encoder: the largest magnitude onto level -127, every element to its
// nearest level. The searched scale must do better.
double naive_iq4_nl_nmse(const std::vector<float>& x) {
  double err = 0, ref = 0;
  for (size_t b = 0; b < x.size(); b += 32) {
    float extreme = 0;
    for (size_t i = b; i < b + 32; ++i)
      if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    const float d = f16_to_f32(f32_to_f16(extreme / -127.0f));
    for (size_t i = b; i < b + 32; ++i) {
      double best = 1e30;
      for (int8_t v : kIq4nlValues) best = std::min(best, std::fabs(double(x[i]) - double(d) * v));
      err += best * best;
      ref += double(x[i]) * x[i];
    }
  }
  return err / ref;
}

TEST(Iq4Quantize, BeatsBaselines) {
  const auto x = gaussian_row(256 * 32, 5);
  const double nl = weighted_nmse(GgmlType::IQ4_NL, x, nullptr, false);
  const double xs = weighted_nmse(GgmlType::IQ4_XS, x, nullptr, false);
  const double q4_0 = weighted_nmse(GgmlType::Q4_0, x, nullptr, false);
  const double naive = naive_iq4_nl_nmse(x);
  std::printf("  nmse iq4_nl %.3e  iq4_xs %.3e  q4_0 %.3e  naive iq4_nl %.3e\n", nl, xs, q4_0, naive);
  EXPECT_LT(nl, 0.9 * naive);
  EXPECT_LT(nl, q4_0);  // same 4.5 bits per weight, levels placed where gaussian weights are
  EXPECT_LT(xs, q4_0);  // 4.25 bits
  EXPECT_LT(nl, 5.5e-3);
  EXPECT_LT(xs, 6e-3);
}

TEST(Iq4Quantize, ImportanceLowersTheWeightedError) {
  // Importance that varies by column over two orders of magnitude, as an imatrix does.
  const int64_t n = 256 * 16;
  const auto x = gaussian_row(n, 11);
  std::mt19937 rng(3);
  std::lognormal_distribution<float> imp(0.0f, 1.5f);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& v : w) v = imp(rng);
  for (GgmlType t : {GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    const double plain = weighted_nmse(t, x, &w, false);
    const double weighted = weighted_nmse(t, x, &w, true);
    std::printf("  %s weighted nmse: plain %.3e, with importance %.3e\n", ggml_type_name(t).data(), plain, weighted);
    EXPECT_LT(weighted, 0.95 * plain) << ggml_type_name(t);
  }
}

TEST(Iq4Quantize, AllZeroImportanceFallsBackToPlain) {
  const auto x = gaussian_row(512, 2);
  const std::vector<float> zero(512, 0.0f);
  for (GgmlType t : {GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    std::vector<uint8_t> a(ggml_row_bytes(t, 512)), b(a.size());
    quantize_row(t, x.data(), a.data(), 512);
    quantize_row(t, x.data(), b.data(), 512, zero.data());
    EXPECT_EQ(a, b) << ggml_type_name(t);
  }
}

TEST(Iq4Quantize, BadImportanceIsAnError) {
  const auto x = gaussian_row(256, 2);
  std::vector<float> w(256, 1.0f);
  w[7] = -1.0f;
  std::vector<uint8_t> q(ggml_row_bytes(GgmlType::IQ4_XS, 256));
  EXPECT_THROW(quantize_row(GgmlType::IQ4_XS, x.data(), q.data(), 256, w.data()), std::exception);
  w[7] = std::nanf("");
  EXPECT_THROW(quantize_row(GgmlType::IQ4_NL, x.data(), q.data(), 256, w.data()), std::exception);
}

}  // namespace
}  // namespace tandem
