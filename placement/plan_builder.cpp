#include "placement/plan_builder.h"

#include <algorithm>
#include <map>

#include "placement/tensor_kind.h"
#include "runtime/core/error.h"

namespace tandem::placement {

namespace {

BudgetInputs budget_inputs(const ModelLayout& m, const PlanOptions& o) {
  BudgetInputs in;
  in.kv_lora_rank = m.kv_lora_rank;
  in.qk_rope = m.qk_rope;
  in.n_expert = m.n_expert;
  in.gpu_workspace_bytes = o.gpu_workspace_bytes;
  return in;
}

void check_exists(const Device& d, const Topology& t, const std::string& origin) {
  if (d.is_gpu() && (d.index < 0 || size_t(d.index) >= t.gpus.size()))
    fail(origin, ": ", d.str(), " does not exist (this machine has ", t.gpus.size(), " GPU(s))");
  if (d.is_cpu() && d.index != Device::kAllNodes && size_t(d.index) >= t.nodes.size())
    fail(origin, ": ", d.str(), " does not exist (this machine has ", t.nodes.size(), " NUMA node(s))");
}

// Sets the layer part of `kind` to d (attention must agree across its tensors).
void set_part(PlacementPlan& p, const TensorClass& c, const Device& d, const std::string& name) {
  if (c.kind == TensorKind::TokenEmbd) p.token_embd = d;
  if (c.kind == TensorKind::Output) p.output = d;
  if (c.layer < 0) return;
  LayerPlacement& l = p.layers[size_t(c.layer)];
  switch (c.kind) {
    case TensorKind::Attention: l.attention = d; break;
    case TensorKind::DenseFfn: l.dense_ffn = d; break;
    case TensorKind::Router: l.router = d; break;
    case TensorKind::SharedExperts: l.shared_experts = d; break;
    default: break;
  }
  (void)name;
}

}  // namespace

MemoryBudget plan_budget(const PlacementPlan& plan, const ModelLayout& model, const Topology& topology,
                         const PlanOptions& options) {
  return compute_budget(plan, topology, budget_inputs(model, options));
}

PlacementPlan make_plan(const ModelLayout& model, const Topology& topo, const Rules* rules, const PlanOptions& o) {
  PlacementPlan p;
  p.context = o.context;
  p.kv_cache_type = !o.kv_cache_type.empty() ? o.kv_cache_type
                    : (rules && rules->kv_cache_type) ? *rules->kv_cache_type : "f16";
  if (rules && rules->experts_on_gpu_from_tokens) p.experts_on_gpu_from_tokens = *rules->experts_on_gpu_from_tokens;
  if (rules) p.warnings = rules->warnings;
  p.notes = model.notes;
  p.layers.resize(size_t(std::max<int64_t>(model.n_layer, 0)));
  const bool have_gpu = !topo.gpus.empty();
  const Device dense_default = have_gpu ? Device::gpu(0) : Device::cpu();
  Device fallback = rules && rules->defaults ? rules->defaults->device : dense_default;
  const std::string fallback_origin = rules && rules->defaults ? rules->defaults_origin
                                      : rules                  ? "default"
                                                               : "automatic plan";
  if (rules && rules->defaults) check_exists(fallback, topo, fallback_origin);
  if (rules)
    for (const Rule& r : rules->rules) check_exists(r.place.device, topo, r.origin);

  // Rules that place something; the others are reported (a typo in a name regex or a layer
  // range past the model is a silent no-op otherwise).
  std::vector<bool> rule_used(rules ? rules->rules.size() : 0, false);
  auto mark = [&](const Rule* r) {
    if (rules && r) rule_used[size_t(r - rules->rules.data())] = true;
  };
  std::vector<bool> attention_set(p.layers.size(), false);
  std::vector<const ModelTensor*> expert_tensors;
  for (const ModelTensor& t : model.tensors) {
    const auto c = classify_tensor(t.name);
    if (!c) {
      p.warnings.push_back("tensor " + t.name + " has no known kind; placed by the defaults");
      p.tensors[t.name] = {fallback, fallback_origin, t.bytes, t.cpu_bytes, t.cpu_bytes_gguf};
      continue;
    }
    if (c->layer >= int64_t(p.layers.size())) fail("tensor ", t.name, ": layer ", c->layer, " >= block count ", p.layers.size());
    if (c->kind == TensorKind::RoutedExperts) {
      expert_tensors.push_back(&t);
      continue;
    }
    Device d = rules ? fallback : dense_default;
    std::string origin = fallback_origin;
    if (rules)
      if (const Rule* r = first_matching_rule(*rules, t.name, *c)) {
        d = r->place.device, origin = r->origin;
        mark(r);
      }
    if (c->kind == TensorKind::Attention) {
      LayerPlacement& l = p.layers[size_t(c->layer)];
      if (attention_set[size_t(c->layer)] && !(l.attention == d))
        fail(origin, ": layer ", c->layer, "'s attention is split across ", l.attention.str(), " and ", d.str(),
             " (tensor ", t.name, "); a layer's attention and KV cache live on one device");
      attention_set[size_t(c->layer)] = true;
    }
    set_part(p, *c, d, t.name);
    p.tensors[t.name] = {d, origin, t.bytes, t.cpu_bytes, t.cpu_bytes_gguf};
  }

  // Routed experts: per layer, per expert. Bytes per layer for fill decisions.
  std::vector<uint64_t> layer_expert_bytes(p.layers.size(), 0);
  for (const ModelTensor* t : expert_tensors) layer_expert_bytes[size_t(classify_tensor(t->name)->layer)] += t->bytes;
  auto gpu_room = [&](int g) -> uint64_t {
    PlacementPlan probe = p;
    const MemoryBudget b = compute_budget(probe, topo, budget_inputs(model, o));
    const uint64_t cap = b.gpu_capacity[size_t(g)];
    const uint64_t margin = cap / 20 + (512ull << 20);
    const uint64_t used = b.gpu_weights[size_t(g)] + b.gpu_kv[size_t(g)] + o.gpu_workspace_bytes;
    return cap > used + margin ? cap - used - margin : 0;
  };
  const size_t n_expert = size_t(std::max<int64_t>(model.n_expert, 0));
  for (size_t l = 0; l < p.layers.size(); ++l) {
    if (layer_expert_bytes[l] == 0) continue;
    std::vector<Device>& owners = p.layers[l].experts;
    owners.assign(n_expert, Device::cpu());
    std::vector<std::string> origin(n_expert, rules ? fallback_origin : "automatic plan");
    const std::string name = "blk." + std::to_string(l) + ".ffn_up_exps.weight";
    const TensorClass c{TensorKind::RoutedExperts, int64_t(l)};
    std::map<int, uint64_t> room;  // per GPU, measured once per layer before its experts land
    auto room_of = [&](int g) {
      if (!room.count(g)) room[g] = gpu_room(g);
      return room[g];
    };
    for (size_t e = 0; e < n_expert; ++e) {
      if (!rules) {
        owners[e] = Device::cpu();
        continue;
      }
      owners[e] = fallback;
      for (const Rule& r : rules->rules) {
        Rules one;
        one.rules = {r};
        if (!first_matching_rule(one, name, c, int64_t(e))) continue;
        mark(&r);
        if (r.place.fill && room_of(r.place.device.index) < layer_expert_bytes[l]) continue;  // falls through
        owners[e] = r.place.device;
        origin[e] = r.origin;
        if (r.place.layout) p.layers[l].expert_layout = *r.place.layout;
        break;
      }
    }
    if (!rules && have_gpu && room_of(0) >= layer_expert_bytes[l]) std::fill(owners.begin(), owners.end(), Device::gpu(0));
    for (const ModelTensor* t : expert_tensors) {
      if (size_t(classify_tensor(t->name)->layer) != l) continue;
      const bool uniform = std::all_of(owners.begin(), owners.end(), [&](const Device& d) { return d == owners[0]; });
      p.tensors[t->name] = {owners.empty() ? fallback : owners[0],
                            owners.empty() ? fallback_origin : (uniform ? origin[0] : origin[0] + " (split by experts)"),
                            t->bytes, t->cpu_bytes, t->cpu_bytes_gguf};
      if (!rules) p.tensors[t->name].rule = "automatic plan";
    }
  }
  for (size_t i = 0; i < rule_used.size(); ++i)
    if (!rule_used[i] && !rules->rules[i].translated) p.warnings.push_back(rules->rules[i].origin + ": this rule matches nothing in the model");
  return p;
}

}  // namespace tandem::placement
