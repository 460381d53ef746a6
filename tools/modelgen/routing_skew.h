// Skewed routing for generated models (`tandem generate --route-skew S`): the router row of each
// expert is scaled so that some experts win the top-k far more often than others, as in trained
// models (the hot experts the placement tuner puts on the GPU). Which experts are hot differs
// per layer (a permutation seeded by the model seed and the layer).
#pragma once

#include <cstdint>
#include <string>

#include "tools/modelgen/deepseek2_options.h"

namespace tandem::modelgen {

// Softmax-gated models: factor for expert `expert` of layer `layer`'s ffn_gate_inp row: 1 for
// every expert when route_skew is 0; otherwise 1 + S * q^3 with q = 1 - rank / (n_experts - 1),
// rank 0 the layer's hottest expert. A larger row norm spreads that expert's logits wider, so it
// tops more tokens. 1 for sigmoid-gated models (their skew is the bias below).
float router_row_scale(const Deepseek2Options& o, int64_t layer, int64_t expert);
// Sigmoid-gated models (exp_probs_b): 0.05 * S * q^3 added to the expert's selection bias (a
// wider row would saturate the sigmoid, 0 for half the tokens; the bias shifts the choice
// itself, as trained V3 biases do). 0 without skew and for softmax gating.
float routing_bias_offset(const Deepseek2Options& o, int64_t layer, int64_t expert);
// The layer of a "blk.N.ffn_gate_inp.weight" tensor, or -1 for any other name.
int64_t router_tensor_layer(const std::string& name);
// The layer of a "blk.N.exp_probs_b.bias" tensor, or -1.
int64_t routing_bias_tensor_layer(const std::string& name);

}  // namespace tandem::modelgen
