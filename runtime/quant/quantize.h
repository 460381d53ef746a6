// Reference quantizers for every computable type: used to write test and benchmark models and
// to check the kernels. Plain round-to-nearest with per-block scale search where the format
// has sub-block scales; not meant to match llama.cpp's imatrix quantizers bit for bit.
#pragma once

#include <cstdint>

#include "runtime/quant/ggml_type.h"

namespace tandem {

// Encodes n floats (a multiple of the type's block size) into ggml_row_bytes(type, n) bytes.
// importance: n weights >= 0 (the importance matrix of the row's input columns) that the
// i-quant and ternary quantizers minimise a weighted error with; other types ignore it.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n, const float* importance = nullptr);

// True where quantize_row uses the importance weights.
bool quantize_uses_importance(GgmlType type);

}  // namespace tandem
