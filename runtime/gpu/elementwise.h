// Element-wise kernels on F32 activations (shaders add.comp, scale.comp, silu_mul.comp).
// Spans may start at any float; outputs may alias inputs.
#pragma once

#include <cstdint>

#include "runtime/gpu/command_sequence.h"

namespace tandem::gpu {

// out[i] = a[i] + b[i], i < n
void record_add(CommandSequence& seq, const GpuSpan& a, const GpuSpan& b, const GpuSpan& out, uint32_t n);
// out[i] = a[i] * s, i < n
void record_scale(CommandSequence& seq, const GpuSpan& a, float s, const GpuSpan& out, uint32_t n);

struct SiluMulShape {
  uint32_t n = 0;     // elements per row
  uint32_t rows = 1;
  uint32_t gate_stride = 0, up_stride = 0, out_stride = 0;  // floats between rows; 0: n
};
// out[r][i] = silu(gate[r][i]) * up[r][i]
void record_silu_mul(CommandSequence& seq, const GpuSpan& gate, const GpuSpan& up, const GpuSpan& out,
                     const SiluMulShape& shape);

}  // namespace tandem::gpu
