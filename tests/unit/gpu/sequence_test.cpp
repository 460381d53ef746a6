// Record once, replay with new host-written inputs; per-dispatch timestamps; pipeline reuse.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/gpu/matmul.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

TEST(CommandSequence, ReplaysWithNewInputs) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t rows = 8, cols = 64;
  const auto wf = testing::random_floats(rows * cols, 2);
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::F32, rows, cols, wf.data(), "w");
  auto x = dev.allocate(cols * 4, "x", MemoryKind::HostVisible);
  auto y = dev.allocate(rows * 4, "y", MemoryKind::HostVisible);
  CommandSequence seq(dev, /*profile=*/true);
  record_matmul(seq, w, x.span(), y.span(), 1);
  seq.finish();
  EXPECT_EQ(seq.dispatch_count(), 1u);
  EXPECT_THROW(record_matmul(seq, w, x.span(), y.span(), 1), Error);
  for (uint32_t step = 0; step < 3; ++step) {
    const auto xv = testing::random_floats(cols, 100 + step);
    std::memcpy(x.mapped(), xv.data(), cols * 4);
    seq.run();
    std::vector<float> got(rows), want(rows);
    std::memcpy(got.data(), y.mapped(), rows * 4);
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t k = 0; k < cols; ++k) want[r] += wf[r * cols + k] * xv[k];
    EXPECT_LT(testing::relative_error(got, want), 1e-5) << "replay " << step;
  }
  if (dev.info().timestamps) {
    const auto t = seq.timings();
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].label.rfind("matmul_f32", 0), 0u) << t[0].label;
    EXPECT_GE(t[0].milliseconds, 0.0);
  }
}

TEST(CommandSequence, PipelinesAreCachedAndBindingsChecked) {
  TANDEM_GPU_OR_SKIP(dev);
  PipelineSpec spec{"matmul_f32", 3, 60, {64, 1}};
  const auto& a = dev.pipeline(spec);
  const auto& b = dev.pipeline(spec);
  EXPECT_EQ(a.pipeline, b.pipeline);
  EXPECT_THROW(dev.pipeline(PipelineSpec{"no_such_shader", 1, 0, {}}), Error);
  CommandSequence seq(dev);
  auto buf = dev.allocate(256, "b");
  uint32_t push[15] = {};
  EXPECT_THROW(seq.dispatch(a, {buf.span()}, push, sizeof push, 1), Error);  // 1 of 3 bindings
}

}  // namespace
}  // namespace tandem::gpu
