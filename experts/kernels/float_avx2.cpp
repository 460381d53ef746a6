// AVX2 + FMA + F16C kernels for unquantized weights against fp32 activations.
#include "experts/kernels/x86_intrinsics.h"

#include "experts/kernels/block_fields.h"
#include "experts/kernels/kquant_unpack_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx2 {
namespace {

inline __m256 load8(const uint16_t* h, bool bf16) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
  if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  return _mm256_cvtph_ps(raw);
}

template <bool kBf16>
float dot_half(int64_t n, const void* w, const void* act) {
  const auto* h = static_cast<const uint16_t*>(w);
  const auto* x = static_cast<const float*>(act);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(load8(h + i, kBf16), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(load8(h + i + 8, kBf16), _mm256_loadu_ps(x + i + 8), acc1);
  }
  float sum = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += (kBf16 ? bfloat_to_float(h[i]) : fp16_to_float(h[i])) * x[i];
  return sum;
}

float dot_f32(int64_t n, const void* w, const void* act) {
  const auto* f = static_cast<const float*>(w);
  const auto* x = static_cast<const float*>(act);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(f + i), _mm256_loadu_ps(x + i), acc);
  float sum = hsum256(acc);
  for (; i < n; ++i) sum += f[i] * x[i];
  return sum;
}


// Several activations, one at a time (this family decodes cheaply enough per activation).
template <RowDotFn kOne>
void loop_many(int64_t n, const void* w, const void* const* acts, int n_acts, float* out) {
  for (int j = 0; j < n_acts; ++j) out[j] = kOne(n, w, acts[j]);
}

}  // namespace

RowKernels float_kernels(GgmlType t) {
  switch (t) {
    case GgmlType::F16: return {dot_half<false>, loop_many<dot_half<false>>};
    case GgmlType::BF16: return {dot_half<true>, loop_many<dot_half<true>>};
    case GgmlType::F32: return {dot_f32, loop_many<dot_f32>};
    default: return {};
  }
}

}  // namespace tandem::experts::avx2
