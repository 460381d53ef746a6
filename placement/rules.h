// Placement rules: the YAML language of issue 8 (see rules/README.md), parsed into plain data.
// Every parsed item keeps where it came from ("file:line") so a plan can say which rule placed
// a tensor; every error names file:line:column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "placement/plan.h"

namespace tandem::placement {

// A set of non-negative integers written "N", "A-B", "A-" (open: up to any value) or lists
// "0-2,7". Empty intervals means "no restriction" only where the caller says so.
struct IndexRanges {
  struct Interval {
    int64_t first = 0;
    int64_t last = -1;  // -1: open ended
  };
  std::vector<Interval> intervals;
  bool contains(int64_t i) const;
  std::string str() const;
};

// Parses "0-2,7", "30-", "5"; throws Error naming `where` on bad syntax (reversed, negative,
// empty item, junk).
IndexRanges parse_index_ranges(const std::string& text, const std::string& where);

enum class TensorKind { TokenEmbd, Attention, DenseFfn, Router, SharedExperts, RoutedExperts, Output };
const char* kind_name(TensorKind k);
std::optional<TensorKind> kind_from_name(const std::string& s);

struct Place {
  Device device;
  bool any_gpu = false;  // "gpu" without an index: the engine's default GPU (0)
  std::optional<ExpertLayout> layout;
  bool fill = false;  // routed experts: whole layers into this GPU while VRAM lasts, rest falls through
};
// "gpu", "gpu:N", "cpu", "cpu:numaK", "cpu:replicate"; throws Error naming `where`.
Place parse_place(const std::string& text, const std::string& where);

struct RuleMatch {
  std::optional<TensorKind> kind;
  std::optional<std::string> name;  // regex, matched in full
  std::optional<IndexRanges> layers;
  std::optional<IndexRanges> experts;
  // `experts: hot(stats.json, N)`: per layer (by index), the N experts the statistics file saw
  // chosen most often; a layer past the list, or one the statistics lack, matches no expert.
  std::optional<std::vector<IndexRanges>> experts_per_layer;
};

struct Rule {
  RuleMatch match;
  Place place;
  std::string origin;       // "file:line"
  bool translated = false;  // made from another tool's rules: matching nothing is no news
};

struct Rules {
  std::vector<Rule> rules;  // included files' rules first, in include order, then this file's
  std::optional<Place> defaults;
  std::string defaults_origin;
  std::optional<std::string> kv_cache_type;  // "f16" | "bf16"
  std::optional<int64_t> experts_on_gpu_from_tokens;
  std::vector<std::string> warnings;
};

// Parses a rules file (resolving includes relative to it; include cycles are errors). A
// KTransformers optimize-rule file (a YAML list of match/replace) is translated (see
// ktransformers_rules.h).
Rules parse_rules_file(const std::string& path);
// Parses rules from text; `filename` names the source in errors and origins, and includes are
// resolved relative to `base_dir` (empty: includes are an error).
Rules parse_rules_text(const std::string& text, const std::string& filename, const std::string& base_dir = "");

// Full-match of a rule's name regex against a tensor name (compiled once per call site).
bool full_match(const std::string& regex, const std::string& name);

// "hot(stats.json, 16)" -> the per-layer lists of the 16 hottest experts of that statistics file
// (placement/expert_stats.h), its path relative to base_dir (empty: the working directory).
// Throws Error naming `where` for bad syntax, an unreadable or malformed statistics file.
std::vector<IndexRanges> parse_hot_experts(const std::string& text, const std::string& where, const std::string& base_dir);
bool is_hot_experts(const std::string& text);

}  // namespace tandem::placement
