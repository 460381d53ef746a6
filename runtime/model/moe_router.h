// Expert selection of a MoE layer: gating (softmax or sigmoid), optional selection bias,
// grouped top-k, normalisation and scaling of the chosen weights. The single definition used by
// the reference pass and as the oracle of the GPU router.
#pragma once

#include <cstdint>

namespace tandem {

enum class ExpertGating;

struct MoeRouterConfig {
  ExpertGating gating;
  int64_t n_expert = 0;
  int64_t n_used = 0;
  int64_t n_groups = 1;       // experts form n_groups equal groups ...
  int64_t n_groups_used = 1;  // ... and only the best n_groups_used groups may be chosen
  bool normalize = false;     // chosen weights divided by their sum
  float scale = 1.0f;         // then multiplied by this
};

// logits: n_expert router outputs of one token; bias: optional per-expert selection bias
// (affects which experts are chosen, not their weights). Writes n_used ids and weights.
void route_token(const MoeRouterConfig& cfg, const float* logits, const float* bias, int32_t* ids,
                 float* weights);

}  // namespace tandem
