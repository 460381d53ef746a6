// y = W x for many tokens on quantized weights, with the expert engine's row-dot kernels
// (experts/kernels/row_dot.h): each input row is quantized once into the activation format the
// weight type's kernel reads (experts/activation_blocks.h) and shared by every weight row; rows
// are split over the threads in tiles, and within a tile tokens go in blocks through the
// many-activation kernel, so a weight row is decoded once per block of tokens.
//
// Matrices given to prepare() whose type has the experts' prefill layout (Q4_K, Q5_K, Q6_K on
// avx512: experts/kernels/repacked.h) are repacked once into engine-owned memory and then run
// the 16-row x 8-token vpdpbusd tile at every token count (it beats the row kernels from one
// token on); the GGUF bytes of those matrices are no longer read.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
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
  QuantMatmul(ThreadPool& pool, experts::CpuIsa isa);
  ~QuantMatmul();

  // Repacks w for the tile kernel when its type and the ISA have one (else nothing); later
  // products on w (same data pointer) use it. Returns the engine-owned bytes it took.
  // Products on a matrix not prepared yet prepare it first.
  int64_t prepare(const WeightMatrix& w);
  // Off: never repack (row kernels on the GGUF bytes only; tests compare the two paths).
  void set_repack(bool on) { repack_ = on; }
  // On: the weights are views of a read-only file mapping (the GGUF mmap), so once a matrix is
  // repacked its mapped pages are dropped (MADV_DONTNEED; they fault back in from the page cache
  // if read again): resident memory holds the matrix once. Never for other memory: on anonymous
  // memory MADV_DONTNEED would zero it.
  void set_release_mapped(bool on) { release_mapped_ = on; }

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
  struct Packed;
  const Packed* packed_for(const WeightMatrix& w, const RowGroups& g);

  bool repack_ = true;
  bool release_mapped_ = false;

  experts::AlignedBuffer acts_;          // quantized input rows
  experts::AlignedBuffer act_sums_;      // per input row: q8k_sub_block_sums (packed Q4_K/Q5_K)
  std::vector<const void*> act_rows_;   // act_rows_[g * n_tokens + t]
  std::unordered_map<const uint8_t*, std::unique_ptr<Packed>> packed_;  // by w.data
};

}  // namespace tandem::cpu
