// A weight matrix resident on the GPU in its GGUF block layout (rows x cols, row-major), and the
// split of its rows into bindable ranges: one descriptor may span at most maxStorageBufferRange
// bytes (128 MiB on lavapipe, 4 GiB on NVIDIA), so larger tensors are bound piecewise.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/gpu/gpu_buffer.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::gpu {

class GpuDevice;

struct GpuWeight {
  GpuSpan span;
  GgmlType type = GgmlType::F32;
  uint32_t rows = 0;
  uint32_t cols = 0;

  uint64_t row_bytes() const { return ggml_row_bytes(type, cols); }
};

// Uploads rows x cols elements of `type` (ggml_row_bytes(type, cols) * rows bytes at data) into
// `storage` (allocated here) and returns the view. `name` appears in errors.
GpuWeight upload_weight(GpuDevice& device, GpuBuffer& storage, GgmlType type, uint32_t rows, uint32_t cols,
                        const void* data, const char* name);

struct RowRange {
  uint32_t row0 = 0;   // first row
  uint32_t rows = 0;   // rows in this range
  GpuSpan binding;     // aligned range to bind (<= max_range bytes)
  uint32_t byte0 = 0;  // offset of row0 within the binding
};

// Covers all rows with as few ranges as max_range and the offset alignment allow.
std::vector<RowRange> split_rows(const GpuWeight& w, uint64_t max_range, uint64_t offset_alignment);

}  // namespace tandem::gpu
