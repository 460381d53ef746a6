#include "placement/tensor_kind.h"

#include <charconv>

namespace tandem::placement {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }

}  // namespace

std::optional<TensorClass> classify_tensor(const std::string& name) {
  if (starts_with(name, "token_embd.")) return TensorClass{TensorKind::TokenEmbd, -1};
  if (starts_with(name, "output_norm.") || starts_with(name, "output.")) return TensorClass{TensorKind::Output, -1};
  if (!starts_with(name, "blk.")) return std::nullopt;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return std::nullopt;
  int64_t layer = 0;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + dot, layer);
  if (ec != std::errc() || p != name.data() + dot || layer < 0) return std::nullopt;
  // Part name without the trailing ".weight"/".bias" etc.
  std::string part = name.substr(dot + 1);
  if (const size_t d = part.find('.'); d != std::string::npos) part = part.substr(0, d);
  TensorClass c{TensorKind::Attention, layer};
  if (starts_with(part, "attn_") || part == "ffn_norm") c.kind = TensorKind::Attention;
  else if (part == "ffn_gate_inp" || part == "exp_probs_b") c.kind = TensorKind::Router;
  else if (ends_with(part, "_shexp")) c.kind = TensorKind::SharedExperts;
  else if (ends_with(part, "_exps")) c.kind = TensorKind::RoutedExperts;
  else if (part == "ffn_gate" || part == "ffn_up" || part == "ffn_down") c.kind = TensorKind::DenseFfn;
  else return std::nullopt;
  return c;
}

const Rule* first_matching_rule(const Rules& rules, const std::string& name, const TensorClass& c, int64_t expert) {
  for (const Rule& r : rules.rules) {
    const RuleMatch& m = r.match;
    if (m.kind && *m.kind != c.kind) continue;
    if (m.layers && (c.layer < 0 || !m.layers->contains(c.layer))) continue;
    if (m.experts) {
      if (c.kind != TensorKind::RoutedExperts || expert < 0 || !m.experts->contains(expert)) continue;
    }
    if (m.experts_per_layer) {
      const auto& per = *m.experts_per_layer;
      if (c.kind != TensorKind::RoutedExperts || expert < 0 || c.layer < 0 || size_t(c.layer) >= per.size() ||
          !per[size_t(c.layer)].contains(expert))
        continue;
    }
    if (m.name && !full_match(*m.name, name)) continue;
    return &r;
  }
  return nullptr;
}

}  // namespace tandem::placement
