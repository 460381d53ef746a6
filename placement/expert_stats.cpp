#include "placement/expert_stats.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "runtime/core/error.h"

namespace tandem::placement {

using nlohmann::json;

const LayerExpertCounts* ExpertStats::layer(int64_t index) const {
  for (const LayerExpertCounts& l : layers)
    if (l.layer == index) return &l;
  return nullptr;
}

std::vector<double> ExpertStats::hit_rates(int64_t index) const {
  const size_t n = size_t(std::max<int64_t>(n_expert, 0));
  const double uniform = n ? double(n_expert_used) / double(n) : 0;
  std::vector<double> rates(n, uniform);
  const LayerExpertCounts* l = layer(index);
  if (!l) return rates;
  uint64_t picks = 0;
  for (size_t e = 0; e < n; ++e) picks += l->total(e);
  if (picks == 0) return rates;
  // picks = tokens * n_used: a rate is the share of tokens that chose the expert.
  const double tokens = double(picks) / double(std::max<int64_t>(n_expert_used, 1));
  for (size_t e = 0; e < n; ++e) rates[e] = double(l->total(e)) / tokens;
  return rates;
}

std::vector<double> ExpertStats::smoothed_hit_rates(int64_t index) const {
  const size_t n = size_t(std::max<int64_t>(n_expert, 0));
  const double uniform = n ? double(n_expert_used) / double(n) : 0;
  std::vector<double> rates(n, uniform);
  const LayerExpertCounts* l = layer(index);
  if (!l) return rates;
  double picks = 0;
  for (size_t e = 0; e < n; ++e) picks += double(l->total(e));
  if (picks < 2) return rates;
  // Leave-one-out log likelihood of every pick under the prior alpha: each pick predicted from
  // the other picks, (c - 1 + alpha) / (N - 1 + n alpha); maximised over a log grid of alpha.
  auto loo = [&](double alpha) {
    double ll = 0;
    for (size_t e = 0; e < n; ++e) {
      const double c = double(l->total(e));
      if (c > 0) ll += c * std::log((c - 1 + alpha) / (picks - 1 + double(n) * alpha));
    }
    return ll;
  };
  double best_alpha = 1, best = -1e300;
  for (int i = 0; i <= 80; ++i) {
    const double alpha = std::pow(10.0, -2.0 + 4.0 * i / 80.0);  // 0.01 .. 100 picks per expert
    const double ll = loo(alpha);
    if (ll > best) best = ll, best_alpha = alpha;
  }
  const double k = double(std::max<int64_t>(n_expert_used, 1));
  for (size_t e = 0; e < n; ++e)
    rates[e] = std::min(1.0, k * (double(l->total(e)) + best_alpha) / (picks + double(n) * best_alpha));
  return rates;
}

namespace {

uint64_t count_of(const json& v, const std::string& where) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) fail(where, ": expected a non-negative integer count, got ", v.dump());
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0) fail(where, ": negative count ", v.dump());
  return v.get<uint64_t>();
}

int64_t int_field(const json& j, const char* key, const std::string& source, int64_t min, int64_t max) {
  if (!j.contains(key)) fail(source, ": missing \"", key, "\"");
  const json& v = j[key];
  if (!v.is_number_integer()) fail(source, ": \"", key, "\" must be an integer, got ", v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < min || x > max) fail(source, ": \"", key, "\" = ", x, " is outside ", min, "..", max);
  return x;
}

std::vector<uint64_t> counts(const json& l, const char* key, size_t n, const std::string& where) {
  if (!l.contains(key)) fail(where, ": missing \"", key, "\"");
  const json& a = l[key];
  if (!a.is_array()) fail(where, ".", key, ": expected a list of counts");
  if (a.size() != n) fail(where, ".", key, ": ", a.size(), " counts, but n_expert is ", n);
  std::vector<uint64_t> out;
  out.reserve(n);
  for (size_t e = 0; e < n; ++e) out.push_back(count_of(a[e], where + "." + key + "[" + std::to_string(e) + "]"));
  return out;
}

}  // namespace

ExpertStats parse_expert_stats(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse errors and numbers out of range alike
    fail(source, ": not a JSON expert statistics file: ", e.what());
  }
  if (!j.is_object()) fail(source, ": expected a JSON object (tandem-expert-stats)");
  if (!j.contains("format") || j["format"] != "tandem-expert-stats")
    fail(source, ": not a tandem-expert-stats file (\"format\" must be \"tandem-expert-stats\"; write one with `tandem profile-experts`)");
  const int64_t version = int_field(j, "version", source, 0, 1 << 20);
  if (version != kExpertStatsVersion)
    fail(source, ": expert statistics version ", version, " (this tandem reads version ", kExpertStatsVersion, ")");
  ExpertStats s;
  if (j.contains("model") && j["model"].is_string()) s.model = j["model"].get<std::string>();
  s.n_layer = int_field(j, "n_layer", source, 1, 1 << 16);
  s.n_expert = int_field(j, "n_expert", source, 1, 1 << 16);
  s.n_expert_used = int_field(j, "n_expert_used", source, 1, s.n_expert);
  for (const char* k : {"prompts", "prefill_tokens", "decode_tokens"})
    if (j.contains(k)) {
      const uint64_t v = count_of(j[k], source + ": \"" + k + "\"");
      (std::string(k) == "prompts" ? s.prompts : std::string(k) == "prefill_tokens" ? s.prefill_tokens : s.decode_tokens) = v;
    }
  if (!j.contains("layers") || !j["layers"].is_array()) fail(source, ": missing \"layers\" (a list of per-layer counts)");
  int64_t previous = -1;
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    const json& l = j["layers"][i];
    const std::string where = source + ": layers[" + std::to_string(i) + "]";
    if (!l.is_object()) fail(where, ": expected an object {layer, prefill, decode}");
    LayerExpertCounts c;
    c.layer = int_field(l, "layer", where, 0, s.n_layer - 1);
    if (c.layer <= previous) fail(where, ": layer ", c.layer, " is out of order or repeated (layers ascend)");
    previous = c.layer;
    c.prefill = counts(l, "prefill", size_t(s.n_expert), where);
    c.decode = counts(l, "decode", size_t(s.n_expert), where);
    s.layers.push_back(std::move(c));
  }
  return s;
}

ExpertStats read_expert_stats_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read expert statistics file ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_expert_stats(ss.str(), path);
}

json expert_stats_json(const ExpertStats& s) {
  json layers = json::array();
  for (const LayerExpertCounts& l : s.layers) layers.push_back({{"layer", l.layer}, {"prefill", l.prefill}, {"decode", l.decode}});
  return {{"format", "tandem-expert-stats"}, {"version", kExpertStatsVersion}, {"model", s.model},
          {"n_layer", s.n_layer}, {"n_expert", s.n_expert}, {"n_expert_used", s.n_expert_used},
          {"prompts", s.prompts}, {"prefill_tokens", s.prefill_tokens}, {"decode_tokens", s.decode_tokens},
          {"layers", layers}};
}

std::vector<int64_t> hottest_experts(const LayerExpertCounts& layer, int64_t n) {
  std::vector<int64_t> order(layer.prefill.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return layer.total(size_t(a)) > layer.total(size_t(b)); });
  if (n >= 0 && size_t(n) < order.size()) order.resize(size_t(n));
  return order;
}

std::string expert_list_text(std::vector<int64_t> experts) {
  std::sort(experts.begin(), experts.end());
  experts.erase(std::unique(experts.begin(), experts.end()), experts.end());
  std::string out;
  for (size_t i = 0; i < experts.size();) {
    size_t j = i;
    while (j + 1 < experts.size() && experts[j + 1] == experts[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(experts[i]);
    if (j > i) out += "-" + std::to_string(experts[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace tandem::placement
