// ModelLayout from a GGUF header (tensor names and sizes, deepseek2 dimensions); reads no weights.
#pragma once

#include "placement/plan_builder.h"

namespace tandem {
class GgufFile;
}

namespace tandem::placement {

// Reads {arch}.block_count, {arch}.expert_count, {arch}.attention.kv_lora_rank and
// {arch}.rope.dimension_count (absent MoE/MLA keys read as 0), and every tensor's bytes.
ModelLayout model_layout_from_gguf(const GgufFile& file);

}  // namespace tandem::placement
