// Argument errors of dequantize_row / quantize_row name the offending type and count.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem {
namespace {

// Runs f, expecting an Error whose message contains every one of parts.
template <typename F>
void expect_error_naming(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
  }
}

TEST(QuantRowErrors, CountNotAMultipleOfTheBlock) {
  std::vector<uint8_t> bytes(4096);
  std::vector<float> f(1024);
  expect_error_naming([&] { dequantize_row(GgmlType::Q4_0, bytes.data(), f.data(), 33); },
                      {"q4_0", "33", "32"});
  expect_error_naming([&] { dequantize_row(GgmlType::Q6_K, bytes.data(), f.data(), 128); },
                      {"q6_K", "128", "256"});
  expect_error_naming([&] { quantize_row(GgmlType::Q4_K, f.data(), bytes.data(), 300); },
                      {"q4_K", "300"});
  expect_error_naming([&] { quantize_row(GgmlType::Q8_0, f.data(), bytes.data(), -32); },
                      {"q8_0", "-32"});
}

TEST(QuantRowErrors, UnsupportedTypeIsNamed) {
  std::vector<uint8_t> bytes(4096);
  std::vector<float> f(256);
  for (const GgmlType t : {GgmlType::MXFP4, GgmlType::Q8_1, GgmlType::I32, GgmlType::F64}) {
    const std::string name(ggml_type_name(t));
    expect_error_naming([&] { dequantize_row(t, bytes.data(), f.data(), 256); },
                        {"dequantize_row", name, "not supported"});
    expect_error_naming([&] { quantize_row(t, f.data(), bytes.data(), 256); },
                        {"quantize_row", name, "not supported"});
  }
}

TEST(QuantRowErrors, UnknownTypeIdIsNamed) {
  std::vector<uint8_t> bytes(64);
  std::vector<float> f(16);
  expect_error_naming([&] { dequantize_row(GgmlType(77), bytes.data(), f.data(), 16); }, {"77"});
  expect_error_naming([&] { quantize_row(GgmlType(77), f.data(), bytes.data(), 16); }, {"77"});
}

TEST(QuantRowErrors, EmptyRowIsFine) {
  dequantize_row(GgmlType::Q4_K, nullptr, nullptr, 0);
  quantize_row(GgmlType::Q2_K, nullptr, nullptr, 0);
  dequantize_row(GgmlType::F32, nullptr, nullptr, 0);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

TEST(GgmlTypeHelpers, IsQuantized) {
  for (const GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q6_K,
                           GgmlType::Q8_K, GgmlType::IQ2_XXS, GgmlType::MXFP4})
    EXPECT_TRUE(ggml_type_is_quantized(t)) << ggml_type_name(t);
  for (const GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::I8,
                           GgmlType::F64})
    EXPECT_FALSE(ggml_type_is_quantized(t)) << ggml_type_name(t);
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

TEST(QuantRowErrors, NonFiniteInputToABlockFormatIsNamed) {
  std::vector<float> x(256, 1.0f);
  x[37] = std::numeric_limits<float>::quiet_NaN();
  std::vector<uint8_t> bytes(1024);
  expect_error_naming([&] { quantize_row(GgmlType::Q4_K, x.data(), bytes.data(), 256); },
                      {"element 37", "q4_K"});
  x[37] = -std::numeric_limits<float>::infinity();
  expect_error_naming([&] { quantize_row(GgmlType::Q8_0, x.data(), bytes.data(), 256); },
                      {"element 37", "q8_0"});
  // Float formats carry them.
  quantize_row(GgmlType::F16, x.data(), bytes.data(), 256);
  float back[256];
  dequantize_row(GgmlType::F16, bytes.data(), back, 256);
  EXPECT_EQ(back[37], -std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace tandem
