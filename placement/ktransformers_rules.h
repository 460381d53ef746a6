// KTransformers' optimize-rule files read as tandem rules. Theirs is a YAML list of
//   - match: {name: REGEX, class: PYTHON_CLASS}
//     replace: {class: ..., kwargs: {generate_device: cuda:0, prefill_device: cpu, ...}}
// over the module paths of the HF DeepSeek model (model.embed_tokens, model.layers.N.self_attn,
// model.layers.N.mlp[.gate|.shared_experts|.experts], lm_head). Each KTransformers module takes
// the first rule whose name regex matches from its start (Python's re.match) and whose class
// fits; its generate_device is where it runs while decoding. The translation asks, for every
// part of every layer, which module KTransformers would see and which rule would win, and
// writes the answer as tandem rules over layer ranges. What has no meaning here (operator
// choices, transfer maps, a prefill device unlike the decode one) is named in warnings.
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "placement/rules.h"

namespace tandem::placement {

// True for a document shaped like a KTransformers rule file (a list of maps with `match`).
bool looks_like_ktransformers_rules(const YAML::Node& doc);

// Throws Error naming file:line:column for a rule that is not a map with match/replace or has a
// bad regex. Layers are translated up to kMaxLayers; a range reaching it is left open ("N-").
Rules translate_ktransformers_rules(const YAML::Node& doc, const std::string& file);

inline constexpr int kKtMaxLayers = 256;

}  // namespace tandem::placement
