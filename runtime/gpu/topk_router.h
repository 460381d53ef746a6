// MoE expert selection on the GPU (shaders/topk_router.comp); the chosen ids and weights go to
// the CPU expert kernels.
#pragma once

#include <cstdint>

#include "runtime/gpu/command_sequence.h"

namespace tandem::gpu {

struct RouterParams {
  uint32_t n_expert = 0;       // <= 512
  uint32_t k = 0;              // experts per token, <= 64
  bool sigmoid_gate = false;   // DeepSeek-V3: sigmoid; V2: softmax
  uint32_t n_groups = 1;       // expert groups (<= 64); 1: no group limit
  uint32_t top_groups = 1;     // groups kept
  bool group_top2 = true;      // group score: sum of its best two selection scores (V3) or its best (V2)
  bool normalize = false;      // weights sum to 1 before scaling
  float routed_scale = 1.0f;
};

// logits: n_tokens x n_expert floats; bias: n_expert floats or an empty span (no bias);
// ids: n_tokens x k int32; weights: n_tokens x k floats.
void record_topk_router(CommandSequence& seq, const GpuSpan& logits, const GpuSpan& bias, const GpuSpan& ids,
                        const GpuSpan& weights, uint32_t n_tokens, const RouterParams& params);

}  // namespace tandem::gpu
