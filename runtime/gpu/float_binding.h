// Activations are addressed at any float offset (q_pe inside q, one head of many), but a
// descriptor's offset must be aligned to minStorageBufferOffsetAlignment. A FloatBinding binds
// from the aligned offset below and hands the kernel the index of the span's first float.
#pragma once

#include <cstdint>

#include "runtime/gpu/gpu_buffer.h"

namespace tandem::gpu {

struct GpuDeviceInfo;

struct FloatBinding {
  GpuSpan binding;     // aligned, covers the span
  uint32_t first = 0;  // index (in 4-byte words) of the span's first word within the binding
};

// Throws Error when the span is not 4-byte aligned or does not fit one binding.
FloatBinding bind_words(const GpuDeviceInfo& info, const GpuSpan& span, const char* what);

}  // namespace tandem::gpu
