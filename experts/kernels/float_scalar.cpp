// Scalar kernels for unquantized weights (F32, F16, BF16) against fp32 activations.
#include "experts/kernels/block_fields.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::scalar {
namespace {

template <float (*Convert)(uint16_t)>
float dot_half(int64_t n, const void* w, const void* act) {
  const auto* h = static_cast<const uint16_t*>(w);
  const auto* x = static_cast<const float*>(act);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(Convert(h[i])) * x[i];
  return float(sum);
}

float dot_f32(int64_t n, const void* w, const void* act) {
  const auto* f = static_cast<const float*>(w);
  const auto* x = static_cast<const float*>(act);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += double(f[i]) * x[i];
  return float(sum);
}


// Several activations, one at a time (this family decodes cheaply enough per activation).
template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels float_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::F16: return {dot_half<half_to_float>, loop_many<dot_half<half_to_float>>};
    case GgmlType::BF16: return {dot_half<bfloat_to_float>, loop_many<dot_half<bfloat_to_float>>};
    case GgmlType::F32: return {dot_f32, loop_many<dot_f32>};
    default: return {};
  }
}

}  // namespace tandem::experts::scalar
