// AVX-512 kernels for unquantized weights against fp32 activations (16 lanes, FMA).
#include "experts/kernels/x86_intrinsics.h"

#include "experts/kernels/kquant_scales_x86.h"
#include "experts/kernels/row_dot.h"

namespace tandem::experts::avx512 {
namespace {

// Own horizontal sum: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its header.
inline float reduce512(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

inline __m512 load16(const uint16_t* h, bool bf16) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(h));
  if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
  return _mm512_cvtph_ps(raw);
}

template <bool kBf16>
float dot_half(int64_t n, const void* w, const void* act) {
  const auto* h = static_cast<const uint16_t*>(w);
  const auto* x = static_cast<const float*>(act);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(load16(h + i, kBf16), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(load16(h + i + 16, kBf16), _mm512_loadu_ps(x + i + 16), acc1);
  }
  float sum = reduce512(_mm512_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += (kBf16 ? bfloat_to_float(h[i]) : fp16_to_float(h[i])) * x[i];
  return sum;
}

float dot_f32(int64_t n, const void* w, const void* act) {
  const auto* f = static_cast<const float*>(w);
  const auto* x = static_cast<const float*>(act);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(f + i), _mm512_loadu_ps(x + i), acc);
  float sum = reduce512(acc);
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

}  // namespace tandem::experts::avx512
