// Scalar reference dequantization: the obviously-correct definition of every supported type.
// Fast paths (experts/, runtime/gpu) are tested against these.
#pragma once

#include <cstdint>

#include "runtime/quant/ggml_type.h"

namespace tandem {

// Decodes n elements (a multiple of the type's block size) starting at src into dst.
// Throws Error for a type tandem cannot compute.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace tandem
