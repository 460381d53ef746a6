// Embedding lookup from a quantized table (shaders/embedding.comp): out[t] = table[ids[t]].
#pragma once

#include <cstdint>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/gpu_weight.h"

namespace tandem::gpu {

// ids: int32 per token (ids outside the table leave their output row untouched);
// out: n_tokens rows of table.cols floats, out_stride floats apart (0: table.cols).
void record_embedding(CommandSequence& seq, const GpuWeight& table, const GpuSpan& ids, const GpuSpan& out,
                      uint32_t n_tokens, uint32_t out_stride = 0);

}  // namespace tandem::gpu
