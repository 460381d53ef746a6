// Which part of the model a GGUF tensor belongs to, from its name alone (deepseek2 naming:
// token_embd, output_norm, output, blk.N.attn_*, blk.N.ffn_*{,_shexp,_exps}, ffn_gate_inp,
// exp_probs_b), and the first rule that matches it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "placement/rules.h"

namespace tandem::placement {

struct TensorClass {
  TensorKind kind = TensorKind::Attention;
  int64_t layer = -1;  // -1: not in a layer (token_embd, output)
};

// Classifies a tensor name; nullopt for names outside the known layout (the caller warns).
std::optional<TensorClass> classify_tensor(const std::string& name);

// The first rule of `rules` that matches the tensor (for routed experts: expert `expert`; -1
// matches a routed expert tensor only through rules without an experts range), or null.
const Rule* first_matching_rule(const Rules& rules, const std::string& name, const TensorClass& c,
                                int64_t expert = -1);

}  // namespace tandem::placement
