// avx512 MLA inner loops (mla_kernels.h). Built with AVX-512 flags (CMakeLists.txt); called only
// where the ISA is avx512 or amx.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "runtime/cpu/mla_kernels.h"

namespace tandem::cpu::avx512 {
namespace {

// Own horizontal reductions: GCC 12's _mm512_reduce_*_ps trip -Wuninitialized in its header.
float reduce_add(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

float reduce_max(__m512 v) {
  __m256 s = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 q = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_max_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
}

__mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

// NR rows x NH heads of scores: every 16-column step loads NR row chunks and NH query chunks and
// does NR * NH FMAs.
template <int NR, int NH>
void score_block(const float* rows, int64_t width, const float* q, float scale, float* scores, int64_t stride) {
  __m512 acc[NR][NH];
  for (int r = 0; r < NR; ++r)
    for (int h = 0; h < NH; ++h) acc[r][h] = _mm512_setzero_ps();
  for (int64_t c = 0; c < width; c += 16) {
    const __mmask16 m = tail_mask(width - c);
    __m512 rv[NR], qv[NH];
    for (int r = 0; r < NR; ++r) rv[r] = _mm512_maskz_loadu_ps(m, rows + r * width + c);
    for (int h = 0; h < NH; ++h) qv[h] = _mm512_maskz_loadu_ps(m, q + h * width + c);
    for (int r = 0; r < NR; ++r)
      for (int h = 0; h < NH; ++h) acc[r][h] = _mm512_fmadd_ps(rv[r], qv[h], acc[r][h]);
  }
  for (int r = 0; r < NR; ++r)
    for (int h = 0; h < NH; ++h) scores[h * stride + r] = scale * reduce_add(acc[r][h]);
}

using ScoreFn = void (*)(const float*, int64_t, const float*, float, float*, int64_t);
template <int NR>
ScoreFn score_fn(int64_t nh) {
  switch (nh) {
    case 1: return score_block<NR, 1>;
    case 2: return score_block<NR, 2>;
    case 3: return score_block<NR, 3>;
    default: return score_block<NR, 4>;
  }
}

// NH heads x NC chunks of 16 output columns: every row loads NC chunks and broadcasts NH
// probabilities for NH * NC FMAs.
template <int NH, int NC>
void value_block(const float* rows, int64_t n_rows, int64_t width, const float* probs, int64_t stride, int64_t left,
                 float* out, int64_t n_out) {
  __m512 acc[NH][NC];
  __mmask16 m[NC];
  for (int c = 0; c < NC; ++c) m[c] = tail_mask(left - 16 * c);
  for (int h = 0; h < NH; ++h)
    for (int c = 0; c < NC; ++c) acc[h][c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < n_rows; ++p) {
    const float* row = rows + p * width;
    __m512 rv[NC];
    for (int c = 0; c < NC; ++c) rv[c] = _mm512_maskz_loadu_ps(m[c], row + 16 * c);
    for (int h = 0; h < NH; ++h) {
      const __m512 pv = _mm512_set1_ps(probs[h * stride + p]);
      for (int c = 0; c < NC; ++c) acc[h][c] = _mm512_fmadd_ps(pv, rv[c], acc[h][c]);
    }
  }
  for (int h = 0; h < NH; ++h)
    for (int c = 0; c < NC; ++c) _mm512_mask_storeu_ps(out + h * n_out + 16 * c, m[c], acc[h][c]);
}

using ValueFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float*, int64_t);
template <int NH>
ValueFn value_fn(int64_t nc) {
  switch (nc) {
    case 1: return value_block<NH, 1>;
    case 2: return value_block<NH, 2>;
    case 3: return value_block<NH, 3>;
    default: return value_block<NH, 4>;
  }
}

// e^x for x <= 0 (softmax after subtracting the max): 2^n * e^y with |y| <= ln2/2, e^y by its
// Taylor series to y^7 (relative error < 1e-8 before rounding).
__m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 y = _mm512_mul_ps(_mm512_sub_ps(t, n), _mm512_set1_ps(0.693147180559945309f));
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, y, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace

void mla_scores(const MlaKernelArgs& a, const float* q, float scale, float* scores) {
  for (int64_t h = 0; h < a.n_heads; h += 4) {
    const int64_t nh = std::min<int64_t>(4, a.n_heads - h);
    const float* qh = q + h * a.width;
    float* sh = scores + h * a.stride;
    const ScoreFn f4 = score_fn<4>(nh);
    int64_t p = 0;
    for (; p + 4 <= a.n_rows; p += 4) f4(a.rows + p * a.width, a.width, qh, scale, sh + p, a.stride);
    const ScoreFn f1 = score_fn<1>(nh);
    for (; p < a.n_rows; ++p) f1(a.rows + p * a.width, a.width, qh, scale, sh + p, a.stride);
  }
}

void mla_values(const MlaKernelArgs& a, const float* probs, int64_t n_out, float* out) {
  for (int64_t h = 0; h < a.n_heads; h += 4) {
    const int64_t nh = std::min<int64_t>(4, a.n_heads - h);
    for (int64_t c = 0; c < n_out; c += 64) {
      const int64_t left = n_out - c, nc = std::min<int64_t>(4, (left + 15) / 16);
      ValueFn f;
      switch (nh) {
        case 1: f = value_fn<1>(nc); break;
        case 2: f = value_fn<2>(nc); break;
        case 3: f = value_fn<3>(nc); break;
        default: f = value_fn<4>(nc); break;
      }
      f(a.rows + c, a.n_rows, a.width, probs + h * a.stride, a.stride, left, out + h * n_out + c, n_out);
    }
  }
}

void softmax_rows(float* x, int64_t n_heads, int64_t n, int64_t stride) {
  for (int64_t h = 0; h < n_heads; ++h) {
    float* r = x + h * stride;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail_mask(n - i), r + i));
    const __m512 m = _mm512_set1_ps(reduce_max(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = tail_mask(n - i);
      const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), m));
      sum = _mm512_mask_add_ps(sum, k, sum, e);
      _mm512_mask_storeu_ps(r + i, k, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / reduce_add(sum));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 k = tail_mask(n - i);
      _mm512_mask_storeu_ps(r + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r + i), inv));
    }
  }
}

}  // namespace tandem::cpu::avx512
