// Element-wise and row kernels against straightforward CPU loops, at unaligned float offsets.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/gpu/elementwise.h"
#include "runtime/gpu/row_ops.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

using testing::download_floats;
using testing::random_floats;
using testing::relative_error;
using testing::upload_floats;

TEST(GpuOps, AddScaleAtOffsets) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t n = 1000, off = 3;
  const auto a = random_floats(n + off, 1), b = random_floats(n + off, 2);
  auto ab = upload_floats(dev, a, "a"), bb = upload_floats(dev, b, "b");
  auto out = dev.allocate((n + off) * 4, "out"), scaled = dev.allocate(n * 4, "scaled");
  CommandSequence seq(dev);
  record_add(seq, ab.sub(off * 4, n * 4), bb.sub(off * 4, n * 4), out.sub(off * 4, n * 4), n);
  record_scale(seq, out.sub(off * 4, n * 4), -2.5f, scaled.span(), n);
  record_add(seq, ab.span(), bb.span(), ab.span(), n);  // in place
  seq.run();
  const auto got = download_floats(dev, out, n + off), got_s = download_floats(dev, scaled, n),
             got_ip = download_floats(dev, ab, n);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_FLOAT_EQ(got[off + i], a[off + i] + b[off + i]) << i;
    ASSERT_FLOAT_EQ(got_s[i], (a[off + i] + b[off + i]) * -2.5f) << i;
    ASSERT_FLOAT_EQ(got_ip[i], a[i] + b[i]) << i;
  }
}

TEST(GpuOps, SiluMulOnFusedGateUp) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t n = 300, rows = 3;
  const auto gu = random_floats(size_t(rows) * 2 * n, 3, -6, 6);  // each row: gate then up
  auto gub = upload_floats(dev, gu, "gate_up");
  auto out = dev.allocate(rows * n * 4, "out");
  CommandSequence seq(dev);
  record_silu_mul(seq, gub.span(), gub.sub(n * 4, gub.size() - n * 4), out.span(), {n, rows, 2 * n, 2 * n, n});
  seq.run();
  std::vector<float> want(rows * n);
  for (uint32_t r = 0; r < rows; ++r)
    for (uint32_t i = 0; i < n; ++i) {
      const double g = gu[r * 2 * n + i], u = gu[r * 2 * n + n + i];
      want[r * n + i] = float(g / (1 + std::exp(-g)) * u);
    }
  EXPECT_LT(relative_error(download_floats(dev, out, rows * n), want), 1e-5);
}

// Row lengths around the kernel's per-thread register cache (16 x 512 floats) and its workgroup.
void check_rms_norm(uint32_t n, uint32_t rows, uint32_t stride, bool subgroup, bool in_place) {
  TANDEM_GPU_OR_SKIP(dev);
  const auto x = random_floats(size_t(rows) * stride, 4 + n, -3, 3), w = random_floats(n, 5 + n);
  auto xb = upload_floats(dev, x, "x"), wb = upload_floats(dev, w, "w");
  auto yb = dev.allocate(size_t(rows) * stride * 4, "y");
  CommandSequence seq(dev);
  RowShape shape{n, rows, stride, stride};
  shape.allow_subgroup = subgroup;
  record_rms_norm(seq, xb.span(), wb.span(), in_place ? xb.span() : yb.span(), shape, 1e-6f);
  seq.run();
  std::vector<float> want(size_t(rows) * n), got(size_t(rows) * n);
  const auto out = download_floats(dev, in_place ? xb : yb, size_t(rows) * stride);
  for (uint32_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (uint32_t i = 0; i < n; ++i) ss += double(x[r * stride + i]) * x[r * stride + i];
    const double inv = 1 / std::sqrt(ss / n + 1e-6);
    for (uint32_t i = 0; i < n; ++i) {
      want[r * n + i] = float(x[r * stride + i] * inv * w[i]);
      got[r * n + i] = out[r * stride + i];
    }
  }
  EXPECT_LT(relative_error(got, want), 1e-5) << "n " << n << " subgroup " << subgroup;
}

TEST(GpuOps, RmsNorm) {
  for (bool subgroup : {true, false}) {
    check_rms_norm(1000, 4, 1003, subgroup, false);
    check_rms_norm(5, 3, 7, subgroup, false);       // fewer elements than threads
    check_rms_norm(7168, 2, 7168, subgroup, true);  // V3 hidden, in place
    check_rms_norm(9001, 2, 9005, subgroup, true);  // past the register cache
  }
}

void check_add_rms_norm(uint32_t n, uint32_t rows, uint32_t stride, bool subgroup) {
  TANDEM_GPU_OR_SKIP(dev);
  const auto x = random_floats(size_t(rows) * stride, 7, -3, 3), a = random_floats(size_t(rows) * stride, 8, -3, 3),
             w = random_floats(n, 9);
  auto xb = upload_floats(dev, x, "x"), wb = upload_floats(dev, w, "w");
  auto ab = dev.allocate(a.size() * 4, "a (host)", MemoryKind::HostVisible);  // as the CPU experts' output
  std::memcpy(ab.mapped(), a.data(), a.size() * 4);
  auto yb = dev.allocate(rows * n * 4, "y");
  CommandSequence seq(dev);
  RowShape shape{n, rows, stride, n};
  shape.allow_subgroup = subgroup;
  record_add_rms_norm(seq, xb.span(), ab.span(), wb.span(), yb.span(), shape, 1e-6f);
  seq.run();
  EXPECT_EQ(seq.dispatch_count(), 1u);
  std::vector<float> want_x = x, want_y(rows * n);
  for (uint32_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (uint32_t i = 0; i < n; ++i) {
      want_x[r * stride + i] = x[r * stride + i] + a[r * stride + i];
      ss += double(want_x[r * stride + i]) * want_x[r * stride + i];
    }
    const double inv = 1 / std::sqrt(ss / n + 1e-6);
    for (uint32_t i = 0; i < n; ++i) want_y[r * n + i] = float(want_x[r * stride + i] * inv * w[i]);
  }
  const auto got_x = download_floats(dev, xb, x.size());
  for (uint32_t r = 0; r < rows; ++r)
    for (uint32_t i = 0; i < stride; ++i)  // the gap between rows is left alone
      ASSERT_FLOAT_EQ(got_x[r * stride + i], i < n ? want_x[r * stride + i] : x[r * stride + i]) << r << " " << i;
  EXPECT_LT(relative_error(download_floats(dev, yb, rows * n), want_y), 1e-5);
  CommandSequence bad(dev);
  EXPECT_THROW(record_add_rms_norm(bad, xb.span(), ab.span(), wb.span(), xb.span(), {n, rows, stride, n}, 1e-6f),
               Error);  // output over the residual
}

TEST(GpuOps, AddRmsNormKeepsTheSumAndReadsHostMemory) {
  for (bool subgroup : {true, false}) {
    check_add_rms_norm(1000, 3, 1001, subgroup);
    check_add_rms_norm(3, 2, 5, subgroup);
    check_add_rms_norm(9001, 2, 9003, subgroup);
  }
}

TEST(GpuOps, SoftmaxInPlaceWithScale) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t n = 777, rows = 3;
  const auto x = random_floats(size_t(rows) * n, 6, -20, 20);
  auto xb = upload_floats(dev, x, "x");
  CommandSequence seq(dev);
  record_softmax(seq, xb.span(), xb.span(), {n, rows}, 0.5f);
  seq.run();
  std::vector<float> want(x.size());
  for (uint32_t r = 0; r < rows; ++r) {
    double m = -1e30, s = 0;
    for (uint32_t i = 0; i < n; ++i) m = std::max(m, 0.5 * x[r * n + i]);
    for (uint32_t i = 0; i < n; ++i) s += std::exp(0.5 * x[r * n + i] - m);
    for (uint32_t i = 0; i < n; ++i) want[r * n + i] = float(std::exp(0.5 * x[r * n + i] - m) / s);
  }
  const auto got = download_floats(dev, xb, x.size());
  EXPECT_LT(relative_error(got, want), 1e-5);
  double total = 0;
  for (uint32_t i = 0; i < n; ++i) total += got[i];
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(GpuOps, ShortSpanIsAnError) {
  TANDEM_GPU_OR_SKIP(dev);
  auto a = dev.allocate(64, "a");
  CommandSequence seq(dev);
  EXPECT_THROW(record_add(seq, a.span(), a.span(), a.span(), 17), Error);
}

}  // namespace
}  // namespace tandem::gpu
