// Per-type row codecs behind dequantize_row / quantize_row (internal to runtime/quant).
// Each takes a whole number of blocks; the dispatchers check sizes and types.
#pragma once

#include <cstdint>

#include "runtime/quant/block_formats.h"

namespace tandem::row_codecs {

// dequantize_legacy.cpp
void dequantize_q4_0(const void* src, float* dst, int64_t nblocks);
void dequantize_q4_1(const void* src, float* dst, int64_t nblocks);
void dequantize_q5_0(const void* src, float* dst, int64_t nblocks);
void dequantize_q5_1(const void* src, float* dst, int64_t nblocks);
void dequantize_q8_0(const void* src, float* dst, int64_t nblocks);

// dequantize_kquants.cpp
void dequantize_q2_k(const void* src, float* dst, int64_t nblocks);
void dequantize_q3_k(const void* src, float* dst, int64_t nblocks);
void dequantize_q4_k(const void* src, float* dst, int64_t nblocks);
void dequantize_q5_k(const void* src, float* dst, int64_t nblocks);
void dequantize_q6_k(const void* src, float* dst, int64_t nblocks);
void dequantize_q8_k(const void* src, float* dst, int64_t nblocks);

// dequantize_iq4.cpp
void dequantize_iq4_nl(const void* src, float* dst, int64_t nblocks);
void dequantize_iq4_xs(const void* src, float* dst, int64_t nblocks);
// Run scale (-32..31) of run 0..7 of an IQ4_XS block, as the decoder reads it.
int iq4_xs_run_scale(const BlockIQ4_XS& blk, int run);

// dequantize_iq_grid.cpp
void dequantize_iq2_xxs(const void* src, float* dst, int64_t nblocks);
void dequantize_iq2_xs(const void* src, float* dst, int64_t nblocks);
void dequantize_iq2_s(const void* src, float* dst, int64_t nblocks);
void dequantize_iq3_xxs(const void* src, float* dst, int64_t nblocks);
void dequantize_iq3_s(const void* src, float* dst, int64_t nblocks);
void dequantize_iq1_s(const void* src, float* dst, int64_t nblocks);
void dequantize_iq1_m(const void* src, float* dst, int64_t nblocks);
// The fp16 super-block scale of an IQ1_M block, gathered from the top nibbles of its scales.
float iq1_m_super_scale(const BlockIQ1_M& blk);

// dequantize_ternary.cpp
void dequantize_tq1_0(const void* src, float* dst, int64_t nblocks);
void dequantize_tq2_0(const void* src, float* dst, int64_t nblocks);

// quantize_legacy.cpp
void quantize_q4_0(const float* src, void* dst, int64_t nblocks);
void quantize_q4_1(const float* src, void* dst, int64_t nblocks);
void quantize_q5_0(const float* src, void* dst, int64_t nblocks);
void quantize_q5_1(const float* src, void* dst, int64_t nblocks);
void quantize_q8_0(const float* src, void* dst, int64_t nblocks);

// quantize_kquants.cpp
void quantize_q2_k(const float* src, void* dst, int64_t nblocks);
void quantize_q3_k(const float* src, void* dst, int64_t nblocks);
void quantize_q4_k(const float* src, void* dst, int64_t nblocks);
void quantize_q5_k(const float* src, void* dst, int64_t nblocks);
void quantize_q6_k(const float* src, void* dst, int64_t nblocks);
void quantize_q8_k(const float* src, void* dst, int64_t nblocks);

// quantize_iq4.cpp. importance: one weight >= 0 per element (nullptr: all equal), the
// per-column importance matrix repeated along the row by the caller.
void quantize_iq4_nl(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq4_xs(const float* src, void* dst, int64_t nblocks, const float* importance);

// quantize_iq_grid.cpp (lattice i-quants) and quantize_ternary.cpp; importance as above.
void quantize_iq2_xxs(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq2_xs(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq2_s(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq3_xxs(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq3_s(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq1_s(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_iq1_m(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_tq1_0(const float* src, void* dst, int64_t nblocks, const float* importance);
void quantize_tq2_0(const float* src, void* dst, int64_t nblocks, const float* importance);

}  // namespace tandem::row_codecs
