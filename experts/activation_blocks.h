// Activation rows quantized on the fly so that expert dot products run on integer instructions.
// These are tandem's own in-memory layouts (never stored in files): 64-byte aligned int8 values
// first so that SIMD loads of qs never split a cache line.
#pragma once

#include <cstdint>

#include "runtime/quant/ggml_type.h"

namespace tandem::experts {

// For K-quant weights: 256 values with one float scale; bsums[g] = sum of qs[16g..16g+15].
struct alignas(64) ActBlockQ8K {
  int8_t qs[256];
  int16_t bsums[16];
  float d;
};
static_assert(sizeof(ActBlockQ8K) == 320);

// For legacy 32-element weights: 32 values with one float scale; sum = sum of qs.
struct ActBlockQ8 {
  int8_t qs[32];
  float d;
  int32_t sum;
};
static_assert(sizeof(ActBlockQ8) == 40);

enum class ActFormat { Q8K, Q8, F32 };

// The activation format a weight type's dot kernel expects; throws Error for types the expert
// engine cannot compute.
ActFormat activation_format(GgmlType weight_type);
int64_t activation_block_elems(ActFormat f);  // 256, 32 or 1
// Bytes of one activation row of n elements (n a multiple of the block size).
int64_t activation_row_bytes(ActFormat f, int64_t n);

// Quantizes n floats (a multiple of the block size) into dst (activation_row_bytes bytes,
// 64-byte aligned for Q8K). Values use the full int8 range -127..127 of each block.
void quantize_activation_row(ActFormat f, const float* x, void* dst, int64_t n);

}  // namespace tandem::experts
