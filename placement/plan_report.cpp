#include "placement/plan_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "placement/tensor_kind.h"
#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  return buf;
}

std::string percent(uint64_t used, uint64_t capacity) {
  if (capacity == 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * double(used) / double(capacity));
  return buf;
}

// Experts per device of one layer, in order of first appearance.
std::vector<std::pair<std::string, int64_t>> expert_counts(const LayerPlacement& l) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const Device& d : l.experts) {
    const std::string s = d.str();
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == s; });
    if (it == out.end()) out.emplace_back(s, 1);
    else ++it->second;
  }
  return out;
}

bool same_row(const LayerGroup& g, const LayerGroup& h) {
  return g.attention == h.attention && g.dense_ffn == h.dense_ffn && g.router == h.router &&
         g.shared_experts == h.shared_experts && g.experts == h.experts;
}

std::string experts_cell(const LayerGroup& g) {
  if (g.experts.empty()) return "-";
  std::string s;
  for (const auto& [dev, n] : g.experts) s += (s.empty() ? "" : ", ") + dev + " x" + std::to_string(n);
  return s;
}

std::string layers_cell(const LayerGroup& g) {
  return g.first == g.last ? std::to_string(g.first) : std::to_string(g.first) + "-" + std::to_string(g.last);
}

}  // namespace

std::vector<LayerGroup> group_layers(const PlacementPlan& plan) {
  std::vector<LayerGroup> out;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerPlacement& l = plan.layers[i];
    const bool moe = !l.experts.empty();
    LayerGroup g;
    g.first = g.last = int64_t(i);
    g.attention = l.attention.str();
    g.dense_ffn = moe ? "-" : l.dense_ffn.str();
    g.router = moe ? l.router.str() : "-";
    g.shared_experts = moe ? l.shared_experts.str() : "-";
    g.experts = expert_counts(l);
    if (!out.empty() && same_row(out.back(), g) && out.back().last + 1 == g.first) out.back().last = g.last;
    else out.push_back(std::move(g));
  }
  return out;
}

std::vector<std::pair<std::string, uint64_t>> bytes_by_kind(const ModelLayout& model, bool cpu) {
  std::map<std::string, uint64_t> by;
  for (const ModelTensor& t : model.tensors) {
    const auto c = classify_tensor(t.name);
    by[c ? kind_name(c->kind) : "other"] += cpu && t.cpu_bytes ? t.cpu_bytes : t.bytes;
  }
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const char* k : {"token_embd", "attention", "dense_ffn", "router", "shared_experts", "routed_experts", "output", "other"})
    if (by.count(k)) out.emplace_back(k, by[k]);
  return out;
}

std::string format_plan_text(const PlanReport& r) {
  std::ostringstream o;
  uint64_t model_bytes = 0;
  for (const ModelTensor& t : r.model.tensors) model_bytes += t.bytes;
  o << "plan: " << r.rules_source << "; " << r.model.n_layer << " layers, " << r.model.n_expert
    << " routed experts per MoE layer, " << r.model.tensors.size() << " tensors, " << gib(model_bytes) << "\n";
  o << "machine: " << r.topology.nodes.size() << " NUMA node(s), " << r.topology.total_cores() << " cores, "
    << gib(r.topology.host_memory_bytes()) << " RAM";
  for (const GpuInfo& g : r.topology.gpus) o << "; gpu:" << g.index << " " << g.name << " " << gib(g.device_local_bytes);
  o << "\n\n";

  char line[256];
  std::snprintf(line, sizeof line, "%-9s %-12s %-12s %-12s %-14s %s\n", "layers", "attention", "dense_ffn",
                "router", "shared_exps", "routed experts (device x count per layer)");
  o << line;
  for (const LayerGroup& g : group_layers(r.plan)) {
    std::snprintf(line, sizeof line, "%-9s %-12s %-12s %-12s %-14s %s\n", layers_cell(g).c_str(),
                  g.attention.c_str(), g.dense_ffn.c_str(), g.router.c_str(), g.shared_experts.c_str(),
                  experts_cell(g).c_str());
    o << line;
  }
  o << "token_embd " << r.plan.token_embd.str() << ", output " << r.plan.output.str() << "; KV cache "
    << r.plan.kv_cache_type << " for " << r.plan.context << " tokens: " << gib(r.budget.kv_total) << "\n";
  if (r.plan.experts_on_gpu_from_tokens > 0)
    o << "prompts of " << r.plan.experts_on_gpu_from_tokens << "+ tokens stream CPU experts to the GPU\n";

  o << "\nbytes by tensor kind:";
  for (const auto& [k, b] : bytes_by_kind(r.model)) o << " " << k << " " << gib(b) << ";";
  o << "\n";
  for (const auto& [k, b] : bytes_by_kind(r.model, true))
    if (k == "routed_experts") o << "routed experts on the CPU (the engine's layouts): " << gib(b) << "\n";
  o << "\n";
  std::snprintf(line, sizeof line, "%-12s %12s %12s %12s %12s %6s\n", "device", "weights", "KV cache", "total",
                "capacity", "use");
  o << line;
  const MemoryBudget& b = r.budget;
  for (size_t g = 0; g < b.gpu_total.size(); ++g) {
    std::snprintf(line, sizeof line, "%-12s %12s %12s %12s %12s %6s\n", ("gpu:" + std::to_string(g)).c_str(),
                  gib(b.gpu_weights[g]).c_str(), gib(b.gpu_kv[g]).c_str(), gib(b.gpu_total[g]).c_str(),
                  gib(b.gpu_capacity[g]).c_str(), percent(b.gpu_total[g], b.gpu_capacity[g]).c_str());
    o << line;
  }
  for (size_t n = 0; n < b.node_total.size(); ++n) {
    std::snprintf(line, sizeof line, "%-12s %12s %12s %12s %12s %6s\n", ("cpu:numa" + std::to_string(n)).c_str(), "",
                  "", gib(b.node_total[n]).c_str(), gib(b.node_capacity[n]).c_str(),
                  percent(b.node_total[n], b.node_capacity[n]).c_str());
    o << line;
  }
  std::snprintf(line, sizeof line, "%-12s %12s %12s %12s %12s %6s\n", "host", "", "", gib(b.host_total).c_str(),
                gib(b.host_capacity).c_str(), percent(b.host_total, b.host_capacity).c_str());
  o << line;
  for (const std::string& w : r.plan.warnings) o << "warning: " << w << "\n";
  for (const std::string& n : r.plan.notes) o << "note: " << n << "\n";
  if (b.fits()) o << "\nthe plan fits this machine\n";
  else {
    o << "\nthe plan does NOT fit:\n";
    for (const std::string& p : b.problems) o << "  " << p << "\n";
  }
  return o.str();
}

nlohmann::json plan_json(const PlanReport& r) {
  using nlohmann::json;
  json j;
  j["rules"] = r.rules_source;
  j["model"] = {{"layers", r.model.n_layer}, {"routed_experts", r.model.n_expert}, {"tensors", r.model.tensors.size()}};
  json kinds = json::object();
  for (const auto& [k, b] : bytes_by_kind(r.model)) kinds[k] = b;
  j["model"]["bytes_by_kind"] = kinds;
  json cpu_kinds = json::object();
  for (const auto& [k, b] : bytes_by_kind(r.model, true)) cpu_kinds[k] = b;
  j["model"]["cpu_bytes_by_kind"] = cpu_kinds;
  json nodes = json::array();
  for (const NumaNode& n : r.topology.nodes) nodes.push_back({{"index", n.index}, {"cores", n.cores}, {"memory_bytes", n.memory_bytes}});
  json gpus = json::array();
  for (const GpuInfo& g : r.topology.gpus)
    gpus.push_back({{"index", g.index}, {"name", g.name}, {"device_local_bytes", g.device_local_bytes}});
  j["machine"] = {{"numa_nodes", nodes}, {"gpus", gpus}};
  json layers = json::array();
  for (size_t i = 0; i < r.plan.layers.size(); ++i) {
    const LayerPlacement& l = r.plan.layers[i];
    json e = json::object();
    for (const auto& [dev, n] : expert_counts(l)) e[dev] = n;
    json row = {{"layer", i}, {"attention", l.attention.str()}};
    if (l.experts.empty()) row["dense_ffn"] = l.dense_ffn.str();
    else row.update({{"router", l.router.str()}, {"shared_experts", l.shared_experts.str()}, {"routed_experts", e}});
    layers.push_back(std::move(row));
  }
  j["layers"] = layers;
  j["token_embd"] = r.plan.token_embd.str();
  j["output"] = r.plan.output.str();
  j["kv_cache"] = {{"type", r.plan.kv_cache_type}, {"context", r.plan.context}, {"bytes", r.budget.kv_total}};
  j["experts_on_gpu_from_tokens"] = r.plan.experts_on_gpu_from_tokens;
  const MemoryBudget& b = r.budget;
  json devices = json::array();
  for (size_t g = 0; g < b.gpu_total.size(); ++g)
    devices.push_back({{"device", "gpu:" + std::to_string(g)}, {"weights", b.gpu_weights[g]}, {"kv_cache", b.gpu_kv[g]},
                       {"total", b.gpu_total[g]}, {"capacity", b.gpu_capacity[g]}});
  for (size_t n = 0; n < b.node_total.size(); ++n)
    devices.push_back({{"device", "cpu:numa" + std::to_string(n)}, {"total", b.node_total[n]}, {"capacity", b.node_capacity[n]}});
  devices.push_back({{"device", "host"}, {"total", b.host_total}, {"capacity", b.host_capacity}});
  j["memory"] = devices;
  j["warnings"] = r.plan.warnings;
  j["notes"] = r.plan.notes;
  j["fits"] = b.fits();
  j["problems"] = b.problems;
  return j;
}

std::string explain_tensor(const PlacementPlan& plan, const std::string& name) {
  const auto it = plan.tensors.find(name);
  if (it == plan.tensors.end()) {
    std::string near;
    int shown = 0;
    const std::string stem = name.substr(0, name.find('.', name.find('.') + 1));
    for (const auto& [n, t] : plan.tensors)
      if (shown < 5 && n.rfind(stem, 0) == 0) near += (shown++ ? ", " : "") + n;
    fail("--explain: the model has no tensor '", name, "'", near.empty() ? "" : " (tensors starting alike: " + near + ")");
  }
  const TensorPlacement& t = it->second;
  std::ostringstream o;
  o << name << ": " << t.device.str() << ", " << gib(t.bytes) << " (" << t.bytes << " bytes), placed by " << t.rule;
  const auto c = classify_tensor(name);
  if (c && c->kind == TensorKind::RoutedExperts && c->layer >= 0 && size_t(c->layer) < plan.layers.size()) {
    const LayerPlacement& l = plan.layers[size_t(c->layer)];
    o << "\n  experts of layer " << c->layer << ":";
    for (const auto& [dev, n] : expert_counts(l)) {
      o << " " << dev << " [";
      std::string list;
      for (size_t e = 0; e < l.experts.size(); ++e) {
        if (l.experts[e].str() != dev) continue;
        size_t f = e;
        while (f + 1 < l.experts.size() && l.experts[f + 1].str() == dev) ++f;
        list += (list.empty() ? "" : ",") + (f == e ? std::to_string(e) : std::to_string(e) + "-" + std::to_string(f));
        e = f;
      }
      o << list << "] (" << n << ")";
    }
  }
  return o.str();
}

}  // namespace tandem::placement
