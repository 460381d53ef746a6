// Skewed routing for generated models (`tandem generate --route-skew S`): the router row of each
// expert is scaled so that some experts win the top-k far more often than others, as in trained
// models (the hot experts the placement tuner puts on the GPU). Which experts are hot differs
// per layer (a permutation seeded by the model seed and the layer).
#pragma once

#include <cstdint>
#include <string>

#include "tools/modelgen/deepseek2_options.h"

namespace tandem::modelgen {

// Factor for expert `expert` of layer `layer`'s ffn_gate_inp row: 1 for every expert when
// route_skew is 0; otherwise 1 + S * q^3 with q = 1 - rank / (n_experts - 1), rank 0 the layer's
// hottest expert. A larger row norm spreads that expert's logits wider, so it tops more tokens.
float router_row_scale(const Deepseek2Options& o, int64_t layer, int64_t expert);
// The layer of a "blk.N.ffn_gate_inp.weight" tensor, or -1 for any other name.
int64_t router_tensor_layer(const std::string& name);

}  // namespace tandem::modelgen
