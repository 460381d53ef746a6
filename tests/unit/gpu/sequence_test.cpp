// Record once, replay with new host-written inputs; per-dispatch timestamps; pipeline reuse.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/gpu/elementwise.h"
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

// The hybrid engine queues sequences back to back without a host wait between them: the
// barrier after each dispatch must order the second after the first.
TEST(CommandSequence, SequencesSubmittedBackToBackRunInOrder) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t n = 4096;
  const auto av = testing::random_floats(n, 31), bv = testing::random_floats(n, 32);
  auto a = testing::upload_floats(dev, av, "a"), b = testing::upload_floats(dev, bv, "b");
  auto c = dev.allocate(n * 4, "c");
  auto d = dev.allocate(n * 4, "d", MemoryKind::HostVisible);
  CommandSequence first(dev), second(dev);
  for (int i = 0; i < 8; ++i) record_add(first, i == 0 ? a.span() : c.span(), b.span(), c.span(), n);  // c = a + 8b
  record_add(second, c.span(), c.span(), d.span(), n);
  EXPECT_FALSE(first.in_flight());
  first.submit();
  EXPECT_TRUE(first.in_flight());
  EXPECT_THROW(first.submit(), Error);  // one submission at a time
  second.submit();
  second.wait();
  first.wait();
  first.wait();  // nothing in flight: no-op
  EXPECT_FALSE(first.in_flight());
  std::vector<float> got(n);
  std::memcpy(got.data(), d.mapped(), n * 4);
  for (uint32_t i = 0; i < n; ++i) {
    float want = av[i];
    for (int k = 0; k < 8; ++k) want += bv[i];
    ASSERT_FLOAT_EQ(got[i], 2 * want) << i;
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
