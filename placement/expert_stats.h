// Routing statistics of a model over a prompt set: how often each routed expert of each MoE layer
// was chosen, prefill and decode counted apart. `tandem profile-experts` writes them; the rule
// language's `experts: hot(stats.json, N)` and `tandem tune` read them. The file format
// ("tandem-expert-stats", version 1) is documented in rules/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem::placement {

struct LayerExpertCounts {
  int64_t layer = 0;
  std::vector<uint64_t> prefill, decode;  // n_expert counts each
  uint64_t total(size_t e) const { return prefill[e] + decode[e]; }
};

struct ExpertStats {
  std::string model;  // what the statistics were taken on (informational)
  int64_t n_layer = 0, n_expert = 0, n_expert_used = 0;
  uint64_t prompts = 0, prefill_tokens = 0, decode_tokens = 0;
  std::vector<LayerExpertCounts> layers;  // MoE layers only, ascending layer index

  const LayerExpertCounts* layer(int64_t index) const;  // null when the layer has no counts
  // Chance that a token routed through `layer` picks expert e (count / tokens); uniform
  // n_expert_used / n_expert when the layer was never seen.
  std::vector<double> hit_rates(int64_t layer) const;
  // hit_rates smoothed toward uniform by the sample size, for predicting unseen tokens: a few
  // hundred profiled tokens leave most cold experts at 0, so a plan holding "every expert ever
  // seen" would look like it never misses. Additive (Dirichlet) prior of alpha picks per expert,
  // alpha chosen by the leave-one-out likelihood of the counts themselves (MacKay & Peto), so a
  // large sample keeps its own shares and a small one is pulled toward k/n.
  std::vector<double> smoothed_hit_rates(int64_t layer) const;
};

inline constexpr int kExpertStatsVersion = 1;

// Throws Error naming `source` and the problem (not JSON, wrong format or version, a count list
// of the wrong length, a negative or non-integer count, layers out of order or repeated, a
// layer past n_layer).
ExpertStats parse_expert_stats(const std::string& text, const std::string& source);
ExpertStats read_expert_stats_file(const std::string& path);
nlohmann::json expert_stats_json(const ExpertStats& s);

// The n experts of the layer chosen most often (prefill + decode), hottest first; ties go to the
// lower index. n larger than the layer: all of them.
std::vector<int64_t> hottest_experts(const LayerExpertCounts& layer, int64_t n);
// "3,7,9-12": the sorted list in the rule language's range syntax.
std::string expert_list_text(std::vector<int64_t> experts);

}  // namespace tandem::placement
