// Expert matrices repacked for AMX tiles (prefill), and the gathered activations they multiply.
// This is tandem's own in-memory layout (engine-owned; the GGUF mmap is never written).
//
// Rows are taken 16 at a time (a group; rows past the matrix's end are zero). A group is a run
// of steps of `step_cols` columns, each step one B tile in the VNNI order AMX expects:
//   int8 (Q4_K, Q6_K, Q8_0): q[step_cols/4][16 rows][4] int8, then scale[16] float (d * sub-block
//     scale), then for Q4_K min[16] float (dmin * m), so that w = scale * q - min. One step is one
//     sub-block (32 columns; 16 for Q6_K), since scales change there.
//   bf16 (BF16, F16): w[16][16 rows][2] bf16 per 32 columns (F16 rounded to bf16 at repack).
// A tile step is one TDPBSSD (int8 activations as A, 16 tokens x step_cols) or TDPBF16PS, then
// for int8 the per-sub-block scales applied in fp32.
#pragma once

#include <cstdint>
#include <optional>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::experts {

constexpr int kAmxRows = 16;    // weight rows per group (the tile's N)
constexpr int kAmxTokens = 16;  // tokens per tile (the tile's M)

struct AmxFormat {
  GgmlType type;
  bool bf16;      // false: int8 steps with scales
  int step_cols;  // columns per step: 32, or 16 (Q6_K)
  bool has_min;   // Q4_K
  ActFormat act;  // activation rows the engine quantizes for this type
  int64_t step_bytes() const { return bf16 ? step_cols * 32 : step_cols * 16 + 64 * (has_min ? 2 : 1); }
};

// The AMX layout of a weight type, or nothing when the type keeps the avx512 row kernels.
std::optional<AmxFormat> amx_format(GgmlType type);

inline int64_t amx_group_bytes(const AmxFormat& f, int64_t cols) { return cols / f.step_cols * f.step_bytes(); }
inline int64_t amx_matrix_bytes(const AmxFormat& f, int64_t n_rows, int64_t cols) {
  return (n_rows + kAmxRows - 1) / kAmxRows * amx_group_bytes(f, cols);
}

// rows: n_rows rows of f.type as stored (row_bytes apart), cols a multiple of f.step_cols (and of
// the type's block). dst: amx_matrix_bytes bytes, 64-byte aligned.
void amx_repack(const AmxFormat& f, const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst);

// Up to kAmxTokens activation rows gathered into the A-tile order: values [16][cols] (int8, or
// bf16 from fp32 rows), and for int8 per step s and token t: scale[s * 16 + t] (the activation
// block's d) and sum[s * 16 + t] (d * sum of the step's values; Q4_K's min term). Tokens past
// n_tokens are zero.
struct AmxTokenBlock {
  int n_tokens = 0;
  int64_t cols = 0;
  AlignedBuffer values, scale, sum;
  void reserve(const AmxFormat& f, int64_t cols);
};

// Scalar definition of one tile: out[t * 16 + r] = dot(row r of the group, token t), what the
// AMX kernel computes (tests compare them).
void amx_tile_scalar(const AmxFormat& f, const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out);

// amx: the real tile instructions (CPUs with AMX and the permission, cpu_supports(CpuIsa::Amx)).
// amx_emulated: the same source with the tile instructions emulated in C++ (tests, AVX-512 CPUs).
#define TANDEM_AMX_KERNEL_DECLS                                                                        \
  void gather(const AmxFormat& f, const void* const* act_rows, int n_tokens, int64_t cols, AmxTokenBlock& out); \
  void tile(const AmxFormat& f, const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out);
namespace amx {
TANDEM_AMX_KERNEL_DECLS
}
namespace amx_emulated {
TANDEM_AMX_KERNEL_DECLS
}
#undef TANDEM_AMX_KERNEL_DECLS

}  // namespace tandem::experts
