// record_matmul against dequantize_row + a double-precision dot product, for every weight type.
#include <gtest/gtest.h>

#include "runtime/gpu/matmul.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

using testing::download_floats;
using testing::make_weights;
using testing::random_floats;
using testing::relative_error;
using testing::upload_floats;

struct Case {
  GgmlType type;
  uint32_t rows, cols, n_cols;
};

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
  // Every kernel that may serve the product: the generic one, and for decode-shaped K-quant
  // products the chunked kernel with F32 x and (where the device has it) with int8 x.
  for (bool subgroup : {false, true}) {
    for (int path = 0; path < 3; ++path) {
      MatMulLayout layout;
      layout.allow_subgroup = subgroup;
      layout.allow_kquant_matvec = path > 0;
      layout.allow_int_dot = path > 1;
      const std::string kernel = kquant_matvec_kernel(dev, w, xb.span(), c.n_cols, layout);
      if (path > 0 && kernel.empty()) continue;  // served by the generic kernel, tested above
      const bool int8 = kernel.find("_int8") != std::string::npos;
      if (path == 2 && !int8) continue;  // no integer dot product here
      CommandSequence seq(dev);
      record_matmul(seq, w, xb.span(), yb.span(), c.n_cols, layout);
      seq.run();
      const auto got = download_floats(dev, yb, want.size());
      // int8 activations (32-value blocks, scale max/127) cost up to ~0.4% of the output's scale.
      const double err = relative_error(got, want);
      EXPECT_LT(err, int8 ? 1e-2 : 2e-5) << ggml_type_name(c.type) << (subgroup ? " subgroup " : " plain ")
                                          << (kernel.empty() ? "matmul" : kernel);
    }
  }
}

// Decode-shaped K-quant products must take the chunked kernel (and its int8 variant where the
// device has integer dot products), or the fast path could silently go unused.
TEST(MatMul, DecodeKQuantRouting) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 4, cols = 256;
  std::vector<uint8_t> bytes(ggml_row_bytes(GgmlType::Q4_K, cols) * rows);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q4_K, rows, cols, bytes.data(), "q4_k");
  auto xb = dev.allocate(uint64_t(cols) * 16 * 4 + 64, "x");
  const bool int_dot = dev.info().int_dot_product;
  const bool aligned16 = dev.info().min_storage_buffer_offset_alignment % 16 == 0;
  if (aligned16) {
    MatMulLayout int8;
    int8.allow_int_dot = true;
    EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span(), 1, int8).find(int_dot ? "matvec_q4_k_int8" : "matvec_q4_k"), 0u);
    EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span(), 1).find("_int8"), std::string::npos);  // opt-in
    MatMulLayout f32;
    f32.allow_int_dot = false;
    f32.allow_subgroup = false;
    EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span(), 8, f32), "matvec_q4_k");
    // F32 x at an offset that is not a multiple of 4 floats: the generic kernel.
    EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span().sub(4, uint64_t(cols) * 4), 1, f32), "");
  }
  EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span(), kMatvecMaxCols + 1), "");
  MatMulLayout off;
  off.allow_kquant_matvec = false;
  EXPECT_EQ(kquant_matvec_kernel(dev, w, xb.span(), 1, off), "");
}

// Per-head x segments, accumulation and an x span at an odd float offset through the decode
// K-quant kernels (F32 and int8 x) against the generic kernel.
TEST(MatMul, DecodeKQuantGroupsOffsetsAccumulate) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t heads = 3, rows_per = 5, cols = 512, n = 2;
  const uint32_t rows = heads * rows_per;
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q3_K}) {
    std::vector<float> wf;
    const auto bytes = make_weights(type, rows, cols, wf, 21);
    // x: 1 float of padding, then n columns of heads segments of cols floats (column stride
    // heads * cols + 4): per-head segments, odd start offset.
    const uint32_t x_stride = heads * cols + 4;
    const auto x = random_floats(1 + size_t(x_stride) * n, 22);
    const auto y0 = random_floats(size_t(rows) * n, 23);
    std::vector<float> want(y0);
    for (uint32_t c = 0; c < n; ++c)
      for (uint32_t r = 0; r < rows; ++r) {
        double s = 0;
        for (uint32_t k = 0; k < cols; ++k)
          s += double(wf[size_t(r) * cols + k]) * x[1 + size_t(c) * x_stride + (r / rows_per) * cols + k];
        want[size_t(c) * rows + r] += float(s);
      }
    GpuBuffer wbuf;
    const GpuWeight w = upload_weight(dev, wbuf, type, rows, cols, bytes.data(), "heads");
    auto xb = upload_floats(dev, x, "x");
    const GpuSpan xs = xb.span().sub(4, uint64_t(x.size() - 1) * 4);
    for (int path = 0; path < 3; ++path) {
      auto yb = upload_floats(dev, y0, "y");
      MatMulLayout layout;
      layout.x_col_stride = x_stride;
      layout.x_group_rows = rows_per;
      layout.x_group_stride = cols;
      layout.accumulate = true;
      layout.allow_kquant_matvec = path > 0;
      layout.allow_int_dot = path > 1;
      const std::string kernel = kquant_matvec_kernel(dev, w, xs, n, layout);
      CommandSequence seq(dev);
      record_matmul(seq, w, xs, yb.span(), n, layout);
      seq.run();
      const bool int8 = kernel.find("_int8") != std::string::npos;
      EXPECT_LT(relative_error(download_floats(dev, yb, want.size()), want), int8 ? 1e-2 : 2e-5)
          << ggml_type_name(type) << " " << (kernel.empty() ? "matmul" : kernel);
    }
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
                      Case{GgmlType::IQ4_NL, 19, 96, 1}, Case{GgmlType::IQ4_NL, 6, 64, 5},
                      Case{GgmlType::IQ4_XS, 21, 512, 1}, Case{GgmlType::IQ4_XS, 7, 256, 3},
                      Case{GgmlType::IQ2_XXS, 21, 512, 1}, Case{GgmlType::IQ2_XXS, 7, 256, 3},
                      Case{GgmlType::IQ2_XS, 21, 512, 1}, Case{GgmlType::IQ2_XS, 7, 256, 3},
                      Case{GgmlType::IQ2_S, 21, 512, 1}, Case{GgmlType::IQ2_S, 7, 256, 3},
                      Case{GgmlType::IQ3_XXS, 21, 512, 1}, Case{GgmlType::IQ3_XXS, 7, 256, 3},
                      Case{GgmlType::IQ3_S, 21, 512, 1}, Case{GgmlType::IQ3_S, 7, 256, 3},
                      Case{GgmlType::IQ1_S, 21, 512, 1}, Case{GgmlType::IQ1_S, 7, 256, 3},
                      Case{GgmlType::IQ1_M, 21, 512, 1}, Case{GgmlType::IQ1_M, 7, 256, 3},
                      // Longer rows: 8 or more threads per row in the decode K-quant kernel.
                      Case{GgmlType::Q4_K, 9, 2048, 1}, Case{GgmlType::Q5_K, 9, 2048, 8},
                      Case{GgmlType::Q6_K, 9, 4096, 2}, Case{GgmlType::Q2_K, 9, 2048, 5},
                      Case{GgmlType::Q3_K, 9, 4096, 1},
                      // Odd chunk counts per thread (the kernel loads two a step) and odd row
                      // counts over several rows per workgroup.
                      Case{GgmlType::Q4_K, 33, 768, 1}, Case{GgmlType::Q6_K, 45, 1280, 2},
                      Case{GgmlType::Q5_K, 130, 2048, 1}, Case{GgmlType::Q4_K, 131, 2048, 3},
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
