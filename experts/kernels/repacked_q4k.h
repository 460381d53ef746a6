// Q4_K expert rows repacked for prefill: 16 rows interleaved per group, quants pre-decoded to
// one byte each and laid out so that one 64-byte load holds 4 consecutive quants of each of the
// 16 rows. One vpdpbusd then does 64 multiply-adds (16 rows x 4 columns) against 4 activation
// bytes broadcast, and each weight vector is reused for several tokens held in registers.
// This is tandem's own in-memory layout (engine-owned; never stored in files).
//
// Per group and 256-column block (kRepackedBlockBytes):
//   qs[64][16][4] uint8: quants 0..15, [column/4][row][column%4]
//   scale[8][16] float:  d * sc of each 32-column sub-block and row
//   min[8][16] float:    dmin * m
// so that w = scale * q - min and a row's dot with a Q8K activation row is
//   sum_blocks da * sum_s scale_s * sum(q*qa)  -  sum_s min_s * (da * bsum_s).
// Rows past the matrix's end (n_rows not a multiple of 16) are zero.
#pragma once

#include <cstdint>

namespace tandem::experts {

constexpr int kRepackRows = 16;
constexpr int kRepackMaxTokens = 8;  // tokens per kernel call (register blocking)
constexpr int64_t kRepackedBlockBytes = 4096 + 2 * 8 * 16 * 4;

inline int64_t repacked_group_bytes(int64_t cols) { return cols / 256 * kRepackedBlockBytes; }
inline int64_t repacked_bytes(int64_t n_rows, int64_t cols) {
  return (n_rows + kRepackRows - 1) / kRepackRows * repacked_group_bytes(cols);
}

// rows: n_rows Q4_K rows of `cols` columns (cols a multiple of 256), row_bytes apart.
// dst: repacked_bytes(n_rows, cols) bytes, 64-byte aligned.
void repack_q4k_rows(const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst);

// The activation side of the min term: out[s] = d * (bsum[2s] + bsum[2s+1]) for every 32-column
// sub-block of a Q8K activation row (cols / 32 floats).
void q8k_sub_block_sums(const void* act_row, int64_t cols, float* out);

// One group (16 rows) against n_tokens (1..kRepackMaxTokens) Q8K activation rows:
// out[t * 16 + r] = dot(row r, acts[t]). act_sums[t]: q8k_sub_block_sums of acts[t].
using RepackedTileFn = void (*)(const uint8_t* group, int64_t cols, const void* const* acts,
                                const float* const* act_sums, int n_tokens, float* out);

void repacked_q4k_tile_scalar(const uint8_t* group, int64_t cols, const void* const* acts,
                              const float* const* act_sums, int n_tokens, float* out);
namespace avx512 {
void repacked_q4k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out);
}

}  // namespace tandem::experts
