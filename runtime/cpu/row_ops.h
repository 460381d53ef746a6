// Elementwise and per-row operations of the CPU forward pass, with the reference pass's
// numerics (runtime/model/reference_ops.h) but SIMD-friendly loops.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model/rope.h"

namespace tandem::cpu {

// out = x / rms(x) * weight, n values (out may be x).
void rms_norm(const float* x, const float* weight, int64_t n, float eps, float* out);
// x = softmax(x), n > 0 values.
void softmax_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i] (out may be gate).
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
// y[i] += a * x[i]
void axpy(int64_t n, float a, const float* x, float* y);
// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// cos/sin of every rope pair for a run of consecutive positions, computed once per forward and
// shared by every layer and head.
class RopeTable {
 public:
  explicit RopeTable(const RopeParams& p) : rope_(p), pairs_(p.n_dims / 2) {}
  void compute(int64_t first_pos, int64_t n_positions);
  // Rotates the n_dims values of x for position first_pos + i, as Rope::apply does.
  void apply(float* x, int64_t i) const;

 private:
  Rope rope_;
  int64_t pairs_;
  std::vector<float> cos_, sin_;  // [position][pair]
};

}  // namespace tandem::cpu
