// y = W x for many tokens on quantized weights, with the expert engine's row-dot kernels
// (experts/kernels/row_dot.h): each input row is quantized once into the activation format the
// weight type's kernel reads (experts/activation_blocks.h) and shared by every weight row; rows
// are split over the threads in tiles, and within a tile tokens go in blocks through the
// many-activation kernel, so a weight row is decoded once per block of tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "experts/aligned_buffer.h"
#include "experts/cpu_isa.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/model/weight_matrix.h"

namespace tandem::cpu {

// Several independent products over one stacked matrix (one per attention head): group g uses
// `rows` rows of w from first_row + g * group_row_stride.
struct RowGroups {
  int64_t n_groups = 1;
  int64_t rows = 0;
  int64_t first_row = 0;
  int64_t group_row_stride = 0;
};

// Where inputs and outputs lie: token t of group g reads w.cols floats at
// x + t * x_token_stride + g * x_group_stride and writes `rows` floats at
// y + t * y_token_stride + g * y_group_stride.
struct GroupedIo {
  const float* x = nullptr;
  int64_t x_token_stride = 0, x_group_stride = 0;
  float* y = nullptr;
  int64_t y_token_stride = 0, y_group_stride = 0;
};

class QuantMatmul {
 public:
  QuantMatmul(ThreadPool& pool, experts::CpuIsa isa) : pool_(pool), isa_(isa) {}

  // y[t * w.rows + r] = dot(row r of w, x[t * w.cols ...]) for t < n_tokens.
  void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);
  // The grouped form (see RowGroups and GroupedIo). Throws Error for a weight type without a
  // kernel or groups outside w.
  void grouped(const WeightMatrix& w, const RowGroups& groups, const GroupedIo& io, int64_t n_tokens);

  ThreadPool& pool() { return pool_; }
  experts::CpuIsa isa() const { return isa_; }

 private:
  ThreadPool& pool_;
  experts::CpuIsa isa_;
  experts::AlignedBuffer acts_;          // quantized input rows
  std::vector<const void*> act_rows_;   // act_rows_[g * n_tokens + t]
};

}  // namespace tandem::cpu
