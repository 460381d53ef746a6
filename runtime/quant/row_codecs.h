// Per-type row codecs behind dequantize_row / quantize_row (internal to runtime/quant).
// Each takes a whole number of blocks; the dispatchers check sizes and types.
#pragma once

#include <cstdint>

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

}  // namespace tandem::row_codecs
