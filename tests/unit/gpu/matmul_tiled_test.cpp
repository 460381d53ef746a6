// The tiled prefill GEMM (record_matmul_tiled) against dequantize_row + a double-precision dot
// product: every weight type, odd shapes, strides, accumulate, tile configurations, the row split of
// tensors larger than one binding, and record_matmul's switch at tiled_matmul_min_cols(). The
// cooperative-matrix variant runs where the device has it (F16 tiles: looser tolerance).
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/gpu/matmul_tiled.h"
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

constexpr double kPlainTolerance = 2e-5;
constexpr double kCooperativeTolerance = 4e-3;  // F16 weights and activations, F32 sums

// y[c * y_stride + r] = y0 (when accumulating) + W[r] . x[c * x_stride ...].
std::vector<float> reference(const std::vector<float>& w, const std::vector<float>& x, uint32_t rows, uint32_t cols,
                             uint32_t n_cols, uint32_t x_stride, uint32_t y_stride, const std::vector<float>* y0) {
  std::vector<float> y = y0 ? *y0 : std::vector<float>(size_t(n_cols - 1) * y_stride + rows, 0.0f);
  for (uint32_t c = 0; c < n_cols; ++c)
    for (uint32_t r = 0; r < rows; ++r) {
      double s = 0;
      for (uint32_t k = 0; k < cols; ++k) s += double(w[size_t(r) * cols + k]) * x[size_t(c) * x_stride + k];
      y[size_t(c) * y_stride + r] += float(s);
    }
  return y;
}

std::vector<TiledKernel> kernels(const GpuDevice& dev) {
  std::vector<TiledKernel> k{TiledKernel::Plain};
  if (tiled_matmul_cooperative_available(dev.info())) k.push_back(TiledKernel::Cooperative);
  return k;
}
double tolerance(TiledKernel k) { return k == TiledKernel::Cooperative ? kCooperativeTolerance : kPlainTolerance; }
const char* kernel_name(TiledKernel k) { return k == TiledKernel::Cooperative ? "cooperative" : "plain"; }

struct Case {
  GgmlType type;
  uint32_t rows, cols, n_cols;
};

class TiledMatMulTest : public ::testing::TestWithParam<Case> {};

TEST_P(TiledMatMulTest, MatchesDequantizedReference) {
  TANDEM_GPU_OR_SKIP(dev);
  const Case c = GetParam();
  std::vector<float> wf;
  const auto bytes = make_weights(c.type, c.rows, c.cols, wf, 7);
  const auto x = random_floats(size_t(c.cols) * c.n_cols, 11);
  const auto want = reference(wf, x, c.rows, c.cols, c.n_cols, c.cols, c.rows, nullptr);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, c.type, c.rows, c.cols, bytes.data(), "test weight");
  auto xb = upload_floats(dev, x, "x");
  auto yb = dev.allocate(want.size() * 4, "y");
  for (TiledKernel k : kernels(dev)) {
    TiledMatMulOptions o;
    o.kernel = k;
    CommandSequence seq(dev);
    record_matmul_tiled(seq, w, xb.span(), yb.span(), c.n_cols, {}, o);
    seq.run();
    EXPECT_LT(relative_error(download_floats(dev, yb, want.size()), want), tolerance(k))
        << ggml_type_name(c.type) << " " << kernel_name(k);
  }
}

// Rows and columns that are not multiples of the 64 x 64 tile; float rows of odd lengths.
INSTANTIATE_TEST_SUITE_P(
    Types, TiledMatMulTest,
    ::testing::Values(Case{GgmlType::F32, 70, 96, 37}, Case{GgmlType::F16, 70, 96, 37},
                      Case{GgmlType::BF16, 70, 64, 37}, Case{GgmlType::F32, 9, 45, 5}, Case{GgmlType::F16, 13, 23, 66},
                      Case{GgmlType::BF16, 11, 47, 3}, Case{GgmlType::Q8_0, 70, 160, 37},
                      Case{GgmlType::Q4_0, 70, 96, 37}, Case{GgmlType::Q4_1, 70, 96, 37},
                      Case{GgmlType::Q5_0, 70, 96, 37}, Case{GgmlType::Q5_1, 70, 96, 37},
                      Case{GgmlType::Q2_K, 70, 256, 37}, Case{GgmlType::Q3_K, 70, 256, 37},
                      Case{GgmlType::Q4_K, 70, 512, 37}, Case{GgmlType::Q5_K, 70, 256, 37},
                      Case{GgmlType::Q6_K, 70, 256, 37}, Case{GgmlType::Q4_K, 130, 256, 129},
                      Case{GgmlType::Q6_K, 1, 256, 1}, Case{GgmlType::IQ4_NL, 70, 96, 37},
                      Case{GgmlType::IQ4_XS, 70, 256, 37}, Case{GgmlType::IQ2_XXS, 70, 256, 37},
                      Case{GgmlType::IQ2_XS, 70, 256, 37}, Case{GgmlType::IQ2_S, 70, 256, 37},
                      Case{GgmlType::IQ3_XXS, 70, 256, 37}, Case{GgmlType::IQ3_S, 70, 256, 37},
                      Case{GgmlType::IQ1_S, 70, 512, 37}, Case{GgmlType::IQ1_M, 70, 256, 37}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return std::string(ggml_type_name(i.param.type)) + "_" + std::to_string(i.param.rows) + "x" +
             std::to_string(i.param.cols) + "_n" + std::to_string(i.param.n_cols);
    });

TEST(TiledMatMul, StridesAndAccumulate) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 67, cols = 96, n = 41, xs = 100, ys = 75;
  std::vector<float> wf;
  const auto bytes = make_weights(GgmlType::Q8_0, rows, cols, wf, 3);
  const auto x = random_floats(size_t(n) * xs, 4);
  const auto y0 = random_floats(size_t(n - 1) * ys + rows + 5, 5);  // gaps between columns stay untouched
  const auto want = reference(wf, x, rows, cols, n, xs, ys, &y0);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q8_0, rows, cols, bytes.data(), "strided");
  auto xb = upload_floats(dev, x, "x");
  MatMulLayout layout;
  layout.x_col_stride = xs;
  layout.y_col_stride = ys;
  layout.accumulate = true;
  for (TiledKernel k : kernels(dev)) {
    auto yb = upload_floats(dev, y0, "y");
    TiledMatMulOptions o;
    o.kernel = k;
    CommandSequence seq(dev);
    record_matmul_tiled(seq, w, xb.span(), yb.span(), n, layout, o);
    seq.run();
    const auto got = download_floats(dev, yb, y0.size());
    EXPECT_LT(relative_error(got, want), tolerance(k)) << kernel_name(k);
    for (uint32_t c = 0; c + 1 < n; ++c)
      for (uint32_t r = rows; r < ys; ++r) ASSERT_EQ(got[size_t(c) * ys + r], y0[size_t(c) * ys + r]) << c << " " << r;
  }
}

// Other tile shapes than the default (what bench_gpu_kernels tries), incl. a k step of 64 over
// rows of 96 (a half step at the end).
TEST(TiledMatMul, TileConfigurations) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 150, cols = 96, n = 70;
  std::vector<float> wf;
  const auto bytes = make_weights(GgmlType::Q8_0, rows, cols, wf, 8);
  const auto x = random_floats(size_t(cols) * n, 9);
  const auto want = reference(wf, x, rows, cols, n, cols, rows, nullptr);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q8_0, rows, cols, bytes.data(), "tiles");
  auto xb = upload_floats(dev, x, "x");
  auto yb = dev.allocate(want.size() * 4, "y");
  std::vector<TiledMatMulOptions> configs;
  configs.push_back({TiledKernel::Plain, 128, 64, 32, 8, 4, 0, 0});
  configs.push_back({TiledKernel::Plain, 64, 32, 64, 4, 2, 0, 0});
  if (tiled_matmul_cooperative_available(dev.info())) {
    configs.push_back({TiledKernel::Cooperative, 128, 64, 32, 0, 0, 4, 2});
    configs.push_back({TiledKernel::Cooperative, 64, 64, 64, 0, 0, 2, 2});   // a half step at the end
    configs.push_back({TiledKernel::Cooperative, 128, 64, 32, 0, 0, 2, 2});  // 4 x 2 fragments each
    configs.push_back({TiledKernel::Cooperative, 32, 32, 128, 0, 0, 1, 1});  // one subgroup, bk > K

  }
  for (const auto& o : configs) {
    CommandSequence seq(dev);
    record_matmul_tiled(seq, w, xb.span(), yb.span(), n, {}, o);
    seq.run();
    EXPECT_LT(relative_error(download_floats(dev, yb, want.size()), want), tolerance(o.kernel))
        << kernel_name(o.kernel) << " " << o.bm << "x" << o.bn << "x" << o.bk;
  }
}

// Columns far outside F16's range next to tiny ones: the per-column scale keeps each column's
// relative error small on the cooperative path.
TEST(TiledMatMul, LargeActivationsKeepPrecision) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 64, cols = 256, n = 4;
  std::vector<float> wf;
  const auto bytes = make_weights(GgmlType::Q4_K, rows, cols, wf, 12);
  auto x = random_floats(size_t(cols) * n, 13);
  const float mag[4] = {3e5f, 1e-4f, 1.0f, 7e4f};
  for (uint32_t c = 0; c < n; ++c)
    for (uint32_t k = 0; k < cols; ++k) x[size_t(c) * cols + k] *= mag[c];
  const auto want = reference(wf, x, rows, cols, n, cols, rows, nullptr);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q4_K, rows, cols, bytes.data(), "big x");
  auto xb = upload_floats(dev, x, "x");
  auto yb = dev.allocate(want.size() * 4, "y");
  for (TiledKernel k : kernels(dev)) {
    TiledMatMulOptions o;
    o.kernel = k;
    CommandSequence seq(dev);
    record_matmul_tiled(seq, w, xb.span(), yb.span(), n, {}, o);
    seq.run();
    const auto got = download_floats(dev, yb, want.size());
    for (uint32_t c = 0; c < n; ++c) {
      const std::vector<float> g(got.begin() + c * rows, got.begin() + (c + 1) * rows);
      const std::vector<float> e(want.begin() + c * rows, want.begin() + (c + 1) * rows);
      EXPECT_LT(relative_error(g, e, 0), tolerance(k)) << kernel_name(k) << " column " << c << " x " << mag[c];
    }
  }
}

// record_matmul hands n_cols >= tiled_matmul_min_cols() to the tiled kernel (identical bits) and
// keeps fewer columns, and per-head x segments, on its column loop.
TEST(TiledMatMul, RecordMatmulSwitchesAtThreshold) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 40, cols = 256;
  const uint32_t t = tiled_matmul_min_cols(dev.info());
  ASSERT_GE(t, 2u);
  std::vector<float> wf;
  const auto bytes = make_weights(GgmlType::Q4_K, rows, cols, wf, 21);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q4_K, rows, cols, bytes.data(), "switch");
  for (uint32_t n : {t - 1, t}) {
    const auto x = random_floats(size_t(cols) * n, n);
    const auto want = reference(wf, x, rows, cols, n, cols, rows, nullptr);
    auto xb = upload_floats(dev, x, "x");
    auto run = [&](bool tiled_direct, bool allow_tiled) {
      auto yb = dev.allocate(want.size() * 4, "y");
      CommandSequence seq(dev);
      MatMulLayout layout;
      layout.allow_tiled = allow_tiled;
      if (tiled_direct) record_matmul_tiled(seq, w, xb.span(), yb.span(), n, layout);
      else record_matmul(seq, w, xb.span(), yb.span(), n, layout);
      seq.run();
      return download_floats(dev, yb, want.size());
    };
    const auto got = run(false, true);
    EXPECT_EQ(got, n >= t ? run(true, true) : run(false, false)) << "n_cols " << n << ", threshold " << t;
    EXPECT_LT(relative_error(got, want), tolerance(tiled_matmul_auto_kernel(dev.info(), n))) << "n_cols " << n;
  }
  MatMulLayout heads;
  heads.x_group_rows = rows / 2;
  heads.x_group_stride = cols;
  EXPECT_FALSE(tiled_matmul_serves(w, heads));
  heads.x_group_rows = rows;
  EXPECT_TRUE(tiled_matmul_serves(w, heads));
}

// Auto runs exactly the kernel tiled_matmul_auto_kernel() names (identical bits): the plain one
// for few columns and everywhere without cooperative matrices, the cooperative one for many
// columns where the device has it.
TEST(TiledMatMul, AutoPicksTheNamedKernel) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 96, cols = 256;
  std::vector<float> wf;
  const auto bytes = make_weights(GgmlType::Q6_K, rows, cols, wf, 31);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::Q6_K, rows, cols, bytes.data(), "auto");
  const bool coop = tiled_matmul_cooperative_available(dev.info());
  for (uint32_t n : {20u, 130u, 256u}) {
    const TiledKernel k = tiled_matmul_auto_kernel(dev.info(), n);
    if (!coop || n == 20) {
      EXPECT_EQ(k, TiledKernel::Plain) << "n_cols " << n;
    }
    if (coop && n == 256) {
      EXPECT_EQ(k, TiledKernel::Cooperative) << "n_cols " << n;
    }
    const auto x = random_floats(size_t(cols) * n, 40 + n);
    const auto want = reference(wf, x, rows, cols, n, cols, rows, nullptr);
    auto xb = upload_floats(dev, x, "x");
    auto run = [&](TiledKernel kernel) {
      auto yb = dev.allocate(want.size() * 4, "y");
      TiledMatMulOptions o;
      o.kernel = kernel;
      CommandSequence seq(dev);
      record_matmul_tiled(seq, w, xb.span(), yb.span(), n, {}, o);
      seq.run();
      return download_floats(dev, yb, want.size());
    };
    const auto got = run(TiledKernel::Auto);
    EXPECT_EQ(got, run(k)) << "n_cols " << n;
    EXPECT_LT(relative_error(got, want), tolerance(k)) << "n_cols " << n;
  }
}

TEST(TiledMatMul, RejectsWhatItCannotServe) {
  TANDEM_GPU_OR_SKIP(dev);
  const std::vector<float> wf(8 * 64, 0.5f);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::F32, 8, 64, wf.data(), "reject");
  auto xb = dev.allocate(64 * 4 * 4, "x");
  auto yb = dev.allocate(8 * 4 * 4, "y");
  CommandSequence seq(dev);
  MatMulLayout heads;
  heads.x_group_rows = 4;
  heads.x_group_stride = 64;
  EXPECT_THROW(record_matmul_tiled(seq, w, xb.span(), yb.span(), 4, heads), Error);
  EXPECT_THROW(record_matmul_tiled(seq, w, xb.span(), yb.span(), 5), Error);  // input too small
  TiledMatMulOptions bad;
  bad.kernel = TiledKernel::Plain;
  bad.bk = 48;
  EXPECT_THROW(record_matmul_tiled(seq, w, xb.span(), yb.span(), 4, {}, bad), Error);
  if (!tiled_matmul_cooperative_available(dev.info())) {
    TiledMatMulOptions coop;
    coop.kernel = TiledKernel::Cooperative;
    EXPECT_THROW(record_matmul_tiled(seq, w, xb.span(), yb.span(), 4, {}, coop), Error);
  }
}

// A tensor larger than maxStorageBufferRange is dispatched range by range (gpu_weight.h split_rows).
TEST(TiledMatMul, TensorLargerThanOneBinding) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint64_t range = dev.info().max_storage_buffer_range;
  if (range > (512ull << 20)) GTEST_SKIP() << "binding range " << range << " too large to exceed cheaply";
  const uint32_t cols = 32768, n = 2;
  const uint32_t rows = uint32_t(range / (cols * 4)) + 16;
  std::vector<float> wf(size_t(rows) * cols);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = float(int(i % 7) - 3) * 0.25f;
  const auto x = random_floats(size_t(cols) * n, 1);
  const auto want = reference(wf, x, rows, cols, n, cols, rows, nullptr);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::F32, rows, cols, wf.data(), "big weight");
  wf = {};
  ASSERT_GT(w.span.size, range);
  auto xb = upload_floats(dev, x, "x");
  auto yb = dev.allocate(want.size() * 4, "y");
  for (TiledKernel k : kernels(dev)) {
    TiledMatMulOptions o;
    o.kernel = k;
    if (k == TiledKernel::Plain) {  // narrow column tiles: lavapipe computes every column of a tile
      o.bn = 8;
      o.tn = 2;
    }
    CommandSequence seq(dev);
    record_matmul_tiled(seq, w, xb.span(), yb.span(), n, {}, o);
    seq.run();
    EXPECT_LT(relative_error(download_floats(dev, yb, want.size()), want), tolerance(k)) << kernel_name(k);
  }
}

}  // namespace
}  // namespace tandem::gpu
