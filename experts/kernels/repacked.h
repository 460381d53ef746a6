// K-quant expert rows repacked for prefill: 16 rows interleaved per group, 4-bit quant planes
// nibble-packed so that one 64-byte load holds 8 consecutive columns of each of the 16 rows
// (low nibbles: columns 0..3, high nibbles: columns 4..7). A shift and a mask give two weight
// vectors of 16 rows x 4 columns as bytes; one vpdpbusd then does 64 multiply-adds against 4
// activation bytes broadcast, and each weight vector is reused for several tokens held in
// registers. Scales stay in their integer form plus one float super-scale per row, so the layout
// is about as large as the GGUF bytes (Q4_K 1.06x, Q5_K 1.05x, Q6_K 1.01x).
// This is tandem's own in-memory layout (engine-owned; never stored in files).
//
// Per group of 16 rows and 256-column block (RepackedFormat::block_bytes), q = the quant of
// (row r, column i) as an unsigned integer:
//   nib[32][16][4]: byte [i/8][r][i%4] = (q(i) & 15) | (q(i+4) & 15) << 4   (i % 8 < 4)
//   Q4_K (2432 B): nib | sc u8[8][16] | m u8[8][16] | d f32[16] | dmin f32[16]
//        w = d*sc*q - dmin*m per 32-column sub-block
//   Q5_K (2944 B): nib | hi[8][16][4]: bit j of byte [s][r][c] = bit 4 of q(32s + 4j + c)
//        | sc | m | d | dmin, as Q4_K
//   Q6_K (3392 B): nib | hi[16][16][4]: bits 2j..2j+1 of byte [g][r][c] = bits 4..5 of q(16g + 4j + c)
//        | sc i8[16][16] | d f32[16];  w = d*sc*(q - 32) per 16-column group
// Rows past the matrix's end (n_rows not a multiple of 16) are zero (all scales zero).
//
// A row's dot with a Q8K activation row (a = da * qa):
//   Q4_K/Q5_K: sum_blocks da * sum_s d*sc_s * sum(q*qa)  -  sum_s dmin*m_s * (da * bsum_s)
//   Q6_K:      sum_blocks da * d * sum_g sc_g * (sum(q*qa) - 32 * bsum_g)
#pragma once

#include <cstdint>

#include "experts/cpu_isa.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::experts {

constexpr int kRepackRows = 16;
constexpr int kRepackMaxTokens = 8;  // tokens per kernel call (register blocking)

// One group (16 rows) against n_tokens (1..kRepackMaxTokens) Q8K activation rows:
// out[t * 16 + r] = dot(row r, acts[t]). act_sums[t]: q8k_sub_block_sums of acts[t] (read only
// by formats with uses_act_sums).
using RepackedTileFn = void (*)(const uint8_t* group, int64_t cols, const void* const* acts,
                                const float* const* act_sums, int n_tokens, float* out);
// rows: n_rows rows as stored in GGUF, `cols` columns (a multiple of 256), row_bytes apart.
// dst: repacked_bytes(n_rows, cols) bytes, 64-byte aligned.
using RepackFn = void (*)(const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst);

struct RepackedFormat {
  GgmlType type;
  int64_t block_bytes;  // one group of 16 rows x 256 columns
  bool uses_act_sums;   // the min term needs q8k_sub_block_sums of the activations
  RepackFn repack;
  RepackedTileFn tile_scalar;  // the readable definition the SIMD tiles are tested against

  int64_t group_bytes(int64_t cols) const { return cols / 256 * block_bytes; }
  int64_t bytes(int64_t n_rows, int64_t cols) const {
    return (n_rows + kRepackRows - 1) / kRepackRows * group_bytes(cols);
  }
};

// The repacked layout of a weight type; nullptr for types without one.
const RepackedFormat* repacked_format(GgmlType type);
// The tile kernel of a type for an ISA; nullptr when that ISA has none (then: row kernels).
RepackedTileFn repacked_tile_kernel(GgmlType type, CpuIsa isa);

// The activation side of the min term: out[s] = d * (bsum[2s] + bsum[2s+1]) for every 32-column
// sub-block of a Q8K activation row (cols / 32 floats).
void q8k_sub_block_sums(const void* act_row, int64_t cols, float* out);

namespace avx512 {
void repacked_q4k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out);
void repacked_q5k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out);
void repacked_q6k_tile(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                       int n_tokens, float* out);
}  // namespace avx512

}  // namespace tandem::experts
