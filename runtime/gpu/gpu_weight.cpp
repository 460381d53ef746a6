#include "runtime/gpu/gpu_weight.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/gpu/gpu_device.h"

namespace tandem::gpu {

GpuWeight upload_weight(GpuDevice& device, GpuBuffer& storage, GgmlType type, uint32_t rows, uint32_t cols,
                        const void* data, const char* name) {
  const auto& ti = ggml_type_info(type);
  if (cols % ti.block_size) fail("tensor ", name, ": ", cols, " columns is not a multiple of the ", ti.name,
                                 " block size ", ti.block_size);
  const uint64_t bytes = ggml_row_bytes(type, cols) * rows;
  // Rounded to whole words: shaders read 4 bytes at a time, so the last row may touch padding.
  storage = device.allocate((bytes + 3) & ~uint64_t(3), name);
  device.upload(storage.span(), data, bytes);
  return {storage.span(), type, rows, cols};
}

std::vector<RowRange> split_rows(const GpuWeight& w, uint64_t max_range, uint64_t offset_alignment) {
  const uint64_t rb = w.row_bytes();
  const uint64_t align = std::max<uint64_t>(offset_alignment, 4);
  // Leave room for realigning each range's start and for the 4-byte over-read of unaligned rows.
  const uint64_t usable = std::min<uint64_t>(max_range, 0xffffffffull) & ~uint64_t(3);
  if (rb + align + 4 > usable) fail("tensor row of ", rb, " bytes does not fit one GPU binding of ", usable);
  if (w.span.size < rb * w.rows) fail("GPU weight span of ", w.span.size, " bytes is smaller than ", w.rows,
                                      " rows of ", rb, " bytes");
  std::vector<RowRange> out;
  for (uint64_t r = 0; r < w.rows;) {
    const uint64_t start = r * rb;
    const uint64_t bind_off = start / align * align;
    const uint64_t lead = start - bind_off;
    const uint64_t n = std::min<uint64_t>(w.rows - r, (usable - lead - 4) / rb);
    const uint64_t end = std::min<uint64_t>(w.span.size, ((start + n * rb + 3) & ~uint64_t(3)));
    out.push_back({uint32_t(r), uint32_t(n), w.span.sub(bind_off, end - bind_off), uint32_t(lead)});
    r += n;
  }
  return out;
}

}  // namespace tandem::gpu
