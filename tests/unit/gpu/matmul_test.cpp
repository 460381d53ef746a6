// record_matmul against dequantize_row + a double-precision dot product, for every weight type.
#include <gtest/gtest.h>

#include "runtime/gpu/matmul.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

using testing::download_floats;
using testing::random_floats;
using testing::relative_error;
using testing::upload_floats;

struct Case {
  GgmlType type;
  uint32_t rows, cols, n_cols;
};

// Quantizes random weights, returns the bytes and the dequantized floats the kernel must match.
std::vector<uint8_t> make_weights(GgmlType type, uint32_t rows, uint32_t cols, std::vector<float>& dequant,
                                  uint32_t seed) {
  const auto src = random_floats(size_t(rows) * cols, seed);
  const uint64_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> bytes(rb * rows);
  dequant.resize(size_t(rows) * cols);
  for (uint32_t r = 0; r < rows; ++r) {
    quantize_row(type, src.data() + size_t(r) * cols, bytes.data() + r * rb, cols);
    dequantize_row(type, bytes.data() + r * rb, dequant.data() + size_t(r) * cols, cols);
  }
  return bytes;
}

std::vector<float> reference(const std::vector<float>& w, const std::vector<float>& x, uint32_t rows, uint32_t cols,
                             uint32_t n_cols) {
  std::vector<float> y(size_t(rows) * n_cols);
  for (uint32_t c = 0; c < n_cols; ++c)
    for (uint32_t r = 0; r < rows; ++r) {
      double s = 0;
      for (uint32_t k = 0; k < cols; ++k) s += double(w[size_t(r) * cols + k]) * x[size_t(c) * cols + k];
      y[size_t(c) * rows + r] = float(s);
    }
  return y;
}

class MatMulTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatMulTest, MatchesDequantizedReference) {
  TANDEM_GPU_OR_SKIP(dev);
  const Case c = GetParam();
  std::vector<float> wf;
  const auto bytes = make_weights(c.type, c.rows, c.cols, wf, 7);
  const auto x = random_floats(size_t(c.cols) * c.n_cols, 11);
  const auto want = reference(wf, x, c.rows, c.cols, c.n_cols);

  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, c.type, c.rows, c.cols, bytes.data(), "test weight");
  auto xb = upload_floats(dev, x, "x");
  auto yb = dev.allocate(want.size() * 4, "y");
  for (bool subgroup : {false, true}) {
    CommandSequence seq(dev);
    MatMulLayout layout;
    layout.allow_subgroup = subgroup;
    record_matmul(seq, w, xb.span(), yb.span(), c.n_cols, layout);
    seq.run();
    const auto got = download_floats(dev, yb, want.size());
    EXPECT_LT(relative_error(got, want), 2e-5) << ggml_type_name(c.type) << (subgroup ? " subgroup" : " plain");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Types, MatMulTest,
    ::testing::Values(Case{GgmlType::F32, 37, 96, 1}, Case{GgmlType::F16, 37, 96, 3}, Case{GgmlType::BF16, 19, 64, 2},
                      Case{GgmlType::Q8_0, 33, 160, 1}, Case{GgmlType::Q8_0, 17, 96, 11},
                      Case{GgmlType::Q4_0, 33, 96, 1}, Case{GgmlType::Q4_0, 9, 32, 5},
                      Case{GgmlType::Q4_K, 21, 512, 1}, Case{GgmlType::Q4_K, 7, 256, 9},
                      Case{GgmlType::Q5_K, 21, 512, 1}, Case{GgmlType::Q5_K, 7, 256, 4},
                      Case{GgmlType::Q6_K, 21, 512, 1}, Case{GgmlType::Q6_K, 7, 256, 3},
                      // Float rows of any length (an F16-widened attn_k_b with qk_nope 48, odd lengths).
                      Case{GgmlType::F16, 13, 48, 2}, Case{GgmlType::F16, 9, 23, 1}, Case{GgmlType::F32, 5, 7, 3},
                      Case{GgmlType::BF16, 11, 45, 2},
                      Case{GgmlType::Q4_1, 19, 96, 1}, Case{GgmlType::Q4_1, 6, 64, 3},
                      Case{GgmlType::Q5_0, 19, 96, 1}, Case{GgmlType::Q5_0, 6, 64, 5},
                      Case{GgmlType::Q5_1, 19, 96, 1}, Case{GgmlType::Q5_1, 6, 64, 2},
                      Case{GgmlType::Q2_K, 21, 512, 1}, Case{GgmlType::Q2_K, 7, 256, 3},
                      Case{GgmlType::Q3_K, 21, 512, 1}, Case{GgmlType::Q3_K, 7, 256, 6},
                      // More than 16 columns: several passes of the widest variant.
                      Case{GgmlType::Q4_K, 5, 256, 37}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return std::string(ggml_type_name(i.param.type)) + "_" + std::to_string(i.param.rows) + "x" +
             std::to_string(i.param.cols) + "_n" + std::to_string(i.param.n_cols);
    });

TEST(MatMul, PerHeadGroupsAndAccumulate) {
  TANDEM_GPU_OR_SKIP(dev);
  // 3 heads, each 8 rows x 64 cols, each head reading its own 64-float x segment.
  const uint32_t heads = 3, rows_per = 8, cols = 64;
  const auto wf = random_floats(size_t(heads) * rows_per * cols, 3);
  const auto x = random_floats(size_t(heads) * cols, 4);
  const auto y0 = random_floats(size_t(heads) * rows_per, 5);
  std::vector<float> want(y0);
  for (uint32_t r = 0; r < heads * rows_per; ++r)
    for (uint32_t k = 0; k < cols; ++k) want[r] += wf[size_t(r) * cols + k] * x[(r / rows_per) * cols + k];
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::F32, heads * rows_per, cols, wf.data(), "heads");
  auto xb = upload_floats(dev, x, "x");
  auto yb = upload_floats(dev, y0, "y");
  CommandSequence seq(dev);
  MatMulLayout layout;
  layout.x_group_rows = rows_per;
  layout.x_group_stride = cols;
  layout.accumulate = true;
  record_matmul(seq, w, xb.span(), yb.span(), 1, layout);
  seq.run();
  EXPECT_LT(relative_error(download_floats(dev, yb, want.size()), want), 1e-5);
}

TEST(MatMul, RejectsUnsupportedType) {
  TANDEM_GPU_OR_SKIP(dev);
  EXPECT_FALSE(matmul_supports(GgmlType::Q8_K));
  EXPECT_THROW(gpu_weight_type_suffix(GgmlType::Q8_K), Error);
}

}  // namespace
}  // namespace tandem::gpu
