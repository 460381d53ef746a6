// The lattice i-quants' codebooks (runtime/quant/iq_grids.h) as GPU storage buffers: a shader
// that decodes IQ1_S/IQ1_M/IQ2_*/IQ3_* reads its type's grid from the binding after its own
// (PipelineSpec::codebook; CommandSequence::dispatch binds it). One source for both engines:
// the words are the C++ tables, uploaded once per device. Constant arrays in the shaders were
// the first try: lavapipe took ~30x longer per product with them.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/quant/ggml_type.h"

namespace tandem::gpu {

bool has_codebook(GgmlType type);
// The type's grid as 32-bit words (a 64-bit point is words 2i, 2i + 1); throws for other types.
std::vector<uint32_t> codebook_words(GgmlType type);

}  // namespace tandem::gpu
