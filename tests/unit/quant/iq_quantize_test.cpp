// The i-quant and ternary quantizers: importance weights buy a lower importance-weighted error
// than the plain quantizer gets (the weights must reach the point and scale searches), an
// all-zero row stays zero, and a row quantized twice gives the same bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem {
namespace {

const GgmlType kTypes[] = {GgmlType::IQ3_S, GgmlType::IQ3_XXS, GgmlType::IQ2_S, GgmlType::IQ2_XS, GgmlType::IQ2_XXS,
                           GgmlType::IQ1_M, GgmlType::IQ1_S,   GgmlType::TQ2_0, GgmlType::TQ1_0};

std::vector<float> round_trip(GgmlType t, const std::vector<float>& x, const float* importance) {
  const int64_t n = int64_t(x.size());
  std::vector<uint8_t> q(ggml_row_bytes(t, uint64_t(n)));
  quantize_row(t, x.data(), q.data(), n, importance);
  std::vector<float> y(x.size());
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

TEST(IqQuantize, ImportanceLowersTheWeightedError) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = 256 * 16;
  std::vector<float> x(n), w(n);
  for (auto& v : x) v = normal(rng);
  for (auto& v : w) v = std::exp(2.0f * normal(rng));
  for (const GgmlType t : kTypes) {
    ASSERT_TRUE(quantize_uses_importance(t));
    auto weighted_error = [&](const std::vector<float>& y) {
      double e = 0;
      for (size_t i = 0; i < n; ++i) e += double(w[i]) * (x[i] - y[i]) * (x[i] - y[i]);
      return e;
    };
    const double plain = weighted_error(round_trip(t, x, nullptr));
    const double with = weighted_error(round_trip(t, x, w.data()));
    std::printf("  %-8s weighted error plain %.1f, with importance %.1f\n", std::string(ggml_type_name(t)).c_str(),
                plain, with);
    // The ternary types have one free scale per 256 (each element then rounds to its nearest
    // level whatever the weights), so importance can move little there; the lattice types also
    // choose points and sub-block scales by it.
    const bool ternary = t == GgmlType::TQ1_0 || t == GgmlType::TQ2_0;
    EXPECT_LT(with, (ternary ? 0.97 : 0.6) * plain) << ggml_type_name(t);
  }
}

TEST(IqQuantize, ZeroRowStaysZeroAndEncodingIsDeterministic) {
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> zero(512, 0.0f), x(512);
  for (auto& v : x) v = normal(rng);
  for (const GgmlType t : kTypes) {
    for (float v : round_trip(t, zero, nullptr)) ASSERT_EQ(v, 0.0f) << ggml_type_name(t);
    std::vector<uint8_t> a(ggml_row_bytes(t, 512)), b(a.size());
    quantize_row(t, x.data(), a.data(), 512);
    quantize_row(t, x.data(), b.data(), 512);
    EXPECT_EQ(a, b) << ggml_type_name(t);
  }
}

}  // namespace
}  // namespace tandem
