// Expert selection of a MoE layer: gating (softmax or sigmoid), optional selection bias,
// grouped top-k, normalisation and scaling of the chosen weights. The single definition used by
// the reference pass and as the oracle of the GPU router.
#pragma once

#include <cstdint>
#include <functional>

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

// Sees the experts chosen for n_tokens tokens of one MoE layer (n_used ids per token), from the
// passes that route on the CPU (the CPU pass and the reference pass). One observer per process,
// set while nothing runs a model; `tandem profile-experts` counts with it. Empty: none (the
// default; then notify_routing costs one load).
using RoutingObserver = std::function<void(int64_t layer, const int32_t* ids, int64_t n_tokens, int64_t n_used)>;
void set_routing_observer(RoutingObserver observer);
void notify_routing(int64_t layer, const int32_t* ids, int64_t n_tokens, int64_t n_used);

}  // namespace tandem
