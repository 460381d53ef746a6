// Row-wise kernels on F32 activations: RMSNorm (shaders/rms_norm.comp), residual add + RMSNorm
// (shaders/add_rms_norm.comp) and softmax (shaders/softmax.comp). One workgroup per row; outputs may alias inputs.
#pragma once

#include <cstdint>

#include "runtime/gpu/command_sequence.h"

namespace tandem::gpu {

struct RowShape {
  uint32_t n = 0;     // elements per row
  uint32_t rows = 1;
  uint32_t in_stride = 0, out_stride = 0;  // floats between rows; 0: n
  bool allow_subgroup = true;  // rms_norm / add_rms_norm: subgroup-add reductions where the device has them
};

// y[r][i] = x[r][i] / sqrt(mean_i(x[r][i]^2) + eps) * weight[i]
void record_rms_norm(CommandSequence& seq, const GpuSpan& x, const GpuSpan& weight, const GpuSpan& y,
                     const RowShape& shape, float eps);

// The residual add fused with the next norm: x[r][i] += a[r][i], then y[r] = rms_norm(x[r]) * weight.
// x keeps the sum; `a` may be host-visible memory; y must not alias x or a. in_stride is x's and
// a's row stride, out_stride y's.
void record_add_rms_norm(CommandSequence& seq, const GpuSpan& x, const GpuSpan& a, const GpuSpan& weight,
                         const GpuSpan& y, const RowShape& shape, float eps);

// y[r] = softmax(scale * x[r])
void record_softmax(CommandSequence& seq, const GpuSpan& x, const GpuSpan& y, const RowShape& shape,
                    float scale = 1.0f);

}  // namespace tandem::gpu
