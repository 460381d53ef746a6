#include "runtime/gpu/float_binding.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/gpu/device_info.h"

namespace tandem::gpu {

FloatBinding bind_words(const GpuDeviceInfo& info, const GpuSpan& span, const char* what) {
  if (span.offset % 4 || span.size % 4)
    fail("GPU operand ", what, ": offset ", span.offset, " / size ", span.size, " not a multiple of 4 bytes");
  const uint64_t align = std::max<uint64_t>(4, info.min_storage_buffer_offset_alignment);
  const uint64_t base = span.offset / align * align;
  FloatBinding b{{span.buffer, base, span.offset - base + span.size}, uint32_t((span.offset - base) / 4)};
  if (b.binding.size > info.max_storage_buffer_range)
    fail("GPU operand ", what, ": ", span.size, " bytes exceed one binding (maxStorageBufferRange ",
         info.max_storage_buffer_range, ")");
  return b;
}

}  // namespace tandem::gpu
