// Sub-allocation, staging round trips, and a tensor larger than one binding (lavapipe: 128 MiB).
#include <gtest/gtest.h>

#include <numeric>

#include "runtime/gpu/matmul.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

TEST(GpuMemory, SubAllocationsAreDisjointAndReused) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint64_t before = dev.device_bytes_in_use();
  GpuSpan first;
  {
    auto a = dev.allocate(1000, "a");
    auto b = dev.allocate(5000, "b");
    EXPECT_EQ(a.span().buffer, b.span().buffer);  // same block
    EXPECT_TRUE(a.span().offset + 1000 <= b.span().offset || b.span().offset + 5000 <= a.span().offset);
    EXPECT_GE(dev.device_bytes_in_use(), before + 6000);
    first = a.span();
  }
  EXPECT_EQ(dev.device_bytes_in_use(), before);
  auto c = dev.allocate(1000, "c");
  EXPECT_EQ(c.span().offset, first.offset);  // freed space is reused after coalescing
}

TEST(GpuMemory, UploadDownloadRoundTripThroughStaging) {
  TANDEM_GPU_OR_SKIP(dev);
  std::vector<uint32_t> data(3 << 20);  // 12 MiB
  std::iota(data.begin(), data.end(), 7u);
  auto buf = dev.allocate(data.size() * 4, "round trip");
  dev.upload(buf.span(), data.data(), data.size() * 4);
  std::vector<uint32_t> back(data.size());
  dev.download(buf.span(), back.data(), back.size() * 4);
  EXPECT_EQ(back, data);
  dev.fill_zero(buf.span().sub(0, 4096));
  dev.download(buf.span(), back.data(), 4096);
  EXPECT_EQ(back[0], 0u);
  EXPECT_EQ(back[1023], 0u);
  EXPECT_THROW(dev.upload(buf.span().sub(0, 16), data.data(), 32), Error);
}

TEST(GpuMemory, HostVisibleBuffersAreMapped) {
  TANDEM_GPU_OR_SKIP(dev);
  auto h = dev.allocate(64, "host", MemoryKind::HostVisible);
  ASSERT_NE(h.mapped(), nullptr);
  auto d = dev.allocate(64, "device");
  EXPECT_EQ(d.mapped(), nullptr);
}

TEST(GpuMemory, TooLargeAllocationIsAnErrorNamingTheTensor) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint64_t limit = dev.info().max_memory_allocation_size;
  if (limit == 0) GTEST_SKIP() << "device reports no maxMemoryAllocationSize";
  try {
    dev.allocate(limit + (1ull << 20), "blk.7.ffn_down.weight");
    FAIL() << "allocated past maxMemoryAllocationSize";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.7.ffn_down.weight"), std::string::npos) << e.what();
  }
  auto ok = dev.allocate(1024, "after failure");  // the pool is still usable
  EXPECT_TRUE(bool(ok));
}

TEST(GpuMemory, SplitRowsRespectsRangeAndAlignment) {
  GpuWeight w{{VkBuffer(uintptr_t(1)), 0, 1000 * 36}, GgmlType::Q8_0, 1000, 32};  // 34-byte rows
  const auto ranges = split_rows(w, 4096, 64);
  ASSERT_GT(ranges.size(), 1u);
  uint32_t next = 0;
  for (const auto& r : ranges) {
    EXPECT_EQ(r.row0, next);
    EXPECT_LE(r.binding.size, 4096u);
    EXPECT_EQ(r.binding.offset % 64, 0u);
    EXPECT_EQ(r.binding.offset + r.byte0, uint64_t(r.row0) * 34);
    EXPECT_GE(r.binding.size, r.byte0 + uint64_t(r.rows) * 34);
    next += r.rows;
  }
  EXPECT_EQ(next, 1000u);
}

TEST(GpuMemory, TensorLargerThanOneBinding) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint64_t range = dev.info().max_storage_buffer_range;
  if (range > (512ull << 20)) GTEST_SKIP() << "binding range " << range << " too large to exceed cheaply";
  // F32 rows of 32768 elements (128 KiB), enough rows to pass the range by a few rows.
  const uint32_t cols = 32768;
  const uint32_t rows = uint32_t(range / (cols * 4)) + 16;
  std::vector<float> wf(size_t(rows) * cols);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = float(int(i % 7) - 3) * 0.25f;
  const auto x = testing::random_floats(cols, 1);
  std::vector<float> want(rows);
  for (uint32_t r = 0; r < rows; ++r) {
    double s = 0;
    for (uint32_t k = 0; k < cols; ++k) s += double(wf[size_t(r) * cols + k]) * x[k];
    want[r] = float(s);
  }
  GpuBuffer wbuf;
  const GpuWeight w = upload_weight(dev, wbuf, GgmlType::F32, rows, cols, wf.data(), "big weight");
  wf = {};
  EXPECT_GT(w.span.size, range);
  EXPECT_GE(split_rows(w, range, dev.info().min_storage_buffer_offset_alignment).size(), 2u);
  auto xb = testing::upload_floats(dev, x, "x");
  auto yb = dev.allocate(rows * 4, "y");
  CommandSequence seq(dev);
  record_matmul(seq, w, xb.span(), yb.span(), 1);
  seq.run();
  EXPECT_LT(testing::relative_error(testing::download_floats(dev, yb, rows), want), 1e-5);
}

}  // namespace
}  // namespace tandem::gpu
