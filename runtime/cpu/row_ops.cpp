#include "runtime/cpu/row_ops.h"

#include <cmath>

namespace tandem::cpu {
namespace {

// 8 floats as a GCC vector: SIMD in every clone of the functions below, no intrinsics needed.
typedef float Vec8 __attribute__((vector_size(32)));

// Loads and stores as macros: functions taking or returning Vec8 would change ABI by clone.
#define TANDEM_LOAD8(v, p) __builtin_memcpy(&(v), (p), sizeof(Vec8))
#define TANDEM_STORE8(p, v) __builtin_memcpy((p), &(v), sizeof(Vec8))

}  // namespace

__attribute__((target_clones("avx2", "default"))) void axpy(int64_t n, float a, const float* x, float* y) {
  int64_t i = 0;
  const Vec8 va = {a, a, a, a, a, a, a, a};
  for (; i + 8 <= n; i += 8) {
    Vec8 vx, vy;
    TANDEM_LOAD8(vx, x + i);
    TANDEM_LOAD8(vy, y + i);
    vy += va * vx;
    TANDEM_STORE8(y + i, vy);
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

void add_inplace(float* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Vec8 vx, vy;
    TANDEM_LOAD8(vx, x + i);
    TANDEM_LOAD8(vy, y + i);
    vy += vx;
    TANDEM_STORE8(y + i, vy);
  }
  for (; i < n; ++i) y[i] += x[i];
}

void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  Vec8 acc = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Vec8 v;
    TANDEM_LOAD8(v, x + i);
    acc += v * v;
  }
  double ss = 0.0;
  for (int j = 0; j < 8; ++j) ss += double(acc[j]);
  for (; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
  for (i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void softmax_inplace(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void RopeTable::compute(int64_t first_pos, int64_t n_positions) {
  cos_.resize(size_t(n_positions * pairs_));
  sin_.resize(size_t(n_positions * pairs_));
  for (int64_t t = 0; t < n_positions; ++t)
    for (int64_t i = 0; i < pairs_; ++i) {
      const float theta = rope_.angle(i, first_pos + t);
      cos_[size_t(t * pairs_ + i)] = std::cos(theta);
      sin_[size_t(t * pairs_ + i)] = std::sin(theta);
    }
}

void RopeTable::apply(float* x, int64_t t) const {
  const float* c = cos_.data() + t * pairs_;
  const float* s = sin_.data() + t * pairs_;
  for (int64_t i = 0; i < pairs_; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c[i] - x1 * s[i];
    x[2 * i + 1] = x0 * s[i] + x1 * c[i];
  }
}

}  // namespace tandem::cpu
