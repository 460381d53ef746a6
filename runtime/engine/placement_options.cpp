#include "runtime/engine/placement_options.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "placement/model_layout.h"
#include "placement/plan_builder.h"
#include "placement/rules.h"
#include "placement/topology.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/engine/plan_execution.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gpu/gpu_device.h"

namespace tandem {

placement::Topology this_machine_topology() {
  const auto synthetic = knobs::text("TANDEM_SYNTHETIC_TOPOLOGY");
  placement::Topology topo =
      synthetic ? placement::Topology::from_hwloc_synthetic(*synthetic) : placement::Topology::detect_cpu();
  std::vector<gpu::GpuDeviceInfo> gpus;
  try {
    gpus = gpu::GpuDevice::list();
  } catch (const Error&) {  // no Vulkan driver: a plan that names a GPU is refused below
  }
  for (const auto& g : gpus) {
    uint64_t local = 0;
    for (const auto& h : g.heaps)
      if (h.device_local) local = std::max(local, h.size);
    topo.add_gpu(g.name, local);
    topo.gpus.back().software = g.type == "cpu";
  }
  return topo;
}

namespace {

RulesPlan plan_for(const std::string& model_path, const placement::Rules* rules, const std::string& source,
                   const placement::Topology& topo, uint32_t context) {
  const auto file = GgufFile::open(model_path);
  const placement::ModelLayout layout = placement::model_layout_from_gguf(*file);
  placement::PlanOptions po;
  po.context = context;
  RulesPlan r;
  r.plan = placement::make_plan(layout, topo, rules, po);
  const placement::MemoryBudget budget = placement::plan_budget(r.plan, layout, topo, po);
  if (!budget.fits()) {
    std::ostringstream msg;
    msg << source << ": the plan does not fit this machine (`tandem plan` shows it):";
    for (const auto& p : budget.problems) msg << "\n  " << p;
    fail(msg.str());
  }
  std::ostringstream s;
  s << "placement " << source << ": host " << budget.host_total / (1 << 20) << " MiB";
  for (size_t g = 0; g < budget.gpu_total.size(); ++g)
    if (budget.gpu_total[g] > 0) s << ", gpu:" << g << " " << budget.gpu_total[g] / (1 << 20) << " MiB";
  for (const auto& w : r.plan.warnings) s << "\n  warning: " << w;
  r.summary = s.str();
  r.budget = budget;
  for (const auto& g : topo.gpus) r.gpu_names.push_back(g.name);
  return r;
}

}  // namespace

// The memory line is the command's to print (tools/load_progress); a plan's warnings are said here.
static void print_warnings(const RulesPlan& p) {
  for (const auto& w : p.plan.warnings) std::fprintf(stderr, "tandem: warning: %s\n", w.c_str());
}

RulesPlan plan_from_rules(const std::string& model_path, const std::string& rules_path, uint32_t context) {
  const placement::Rules rules = placement::parse_rules_file(rules_path);
  return plan_for(model_path, &rules, rules_path, this_machine_topology(), context);
}

placement::Rules shorthand_rules(ComputePath path, uint32_t gpu_index) {
  if (path == ComputePath::Gpu)  // rules/default-1gpu.yaml on device N
    return placement::parse_rules_text("rules:\n  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: gpu:" +
                                           std::to_string(gpu_index) + "}\n",
                                       "--gpu " + std::to_string(gpu_index));
  return placement::parse_rules_text("defaults: {place: cpu}\n", "--cpu-only");  // rules/cpu-only.yaml
}

void apply_plan(const placement::PlacementPlan& plan, const std::string& model_path, ModelLoadOptions& options) {
  const auto file = GgufFile::open(model_path);
  const placement::ModelLayout layout = placement::model_layout_from_gguf(*file);
  int64_t first_moe = layout.n_layer;
  for (int64_t l = 0; l < int64_t(plan.layers.size()); ++l)
    if (!plan.layers[size_t(l)].experts.empty()) {
      first_moe = l;
      break;
    }
  const PlanExecution ex = plan_execution(plan, layout.n_layer, first_moe, layout.n_expert);
  options.path = ex.uses_gpu ? ComputePath::Gpu : ComputePath::Cpu;
  options.gpu_index = ex.gpu_index;
  options.attention_device = ex.uses_gpu ? ex.attention_device : std::vector<int>{};
  options.ffn_device = ex.uses_gpu ? ex.ffn_device : std::vector<int>{};
  options.output_device = ex.uses_gpu ? ex.output_device : -2;
  options.kv_type = gpu::parse_kv_cache_type(ex.kv_cache_type);
  options.gpu_experts.clear();
  bool any_gpu_expert = false;
  for (const auto& layer : ex.gpu_experts)
    for (uint8_t e : layer) any_gpu_expert = any_gpu_expert || e;
  if (any_gpu_expert) options.gpu_experts = ex.gpu_experts;
  bool replicated = false, sharded = false, pinned = false;
  options.expert_nodes.assign(ex.cpu_expert_nodes.size(), {});
  for (size_t l = 0; l < ex.cpu_expert_nodes.size(); ++l)
    for (int n : ex.cpu_expert_nodes[l]) {
      if (n == PlanExecution::kReplicated) replicated = true;
      else if (n == placement::Device::kAllNodes) sharded = true;
      else if (n >= 0) pinned = true;
    }
  if (replicated && (sharded || pinned))
    fail("placement: some experts are replicated and others ", sharded ? "sharded" : "pinned to a node",
         "; the expert engine replicates all of them or none");
  if (pinned)  // per expert its node, -1 for the sharded ones (and those not on the CPU)
    for (size_t l = 0; l < ex.cpu_expert_nodes.size(); ++l)
      for (int n : ex.cpu_expert_nodes[l]) options.expert_nodes[l].push_back(n >= 0 ? n : -1);
  else
    options.expert_nodes.clear();
  options.replicate_experts = replicated;
  std::optional<bool> repack;
  for (int64_t l = first_moe; l < layout.n_layer; ++l) {
    const auto lay = ex.expert_layout[size_t(l)];
    if (lay == placement::ExpertLayout::Auto) continue;
    const bool want = lay == placement::ExpertLayout::Repacked;
    if (repack && *repack != want) fail("placement: expert layouts differ between layers; the engine takes one");
    repack = want;
  }
  options.repack_for_prefill = repack;
}

RulesPlan apply_rules_option(const std::string& rules, bool device_flags_given, const std::string& model_path,
                             ModelLoadOptions& options) {
  if (!rules.empty()) {
    if (device_flags_given)
      fail("--rules ", rules, " places the model: it cannot be combined with --gpu, --cpu-only or --reference");
    const RulesPlan p = plan_from_rules(model_path, rules, options.max_context);
    print_warnings(p);
    apply_plan(p.plan, model_path, options);
    return p;
  }
  if (options.path == ComputePath::Reference) return {};  // the oracle runs whole, nowhere else
  placement::Topology topo = this_machine_topology();
  if (device_flags_given) {  // --gpu N / --cpu-only: the shipped rule files they stand for
    const placement::Rules r = shorthand_rules(options.path, options.gpu_index);
    const gpu::KvCacheType kv = options.kv_type;  // --kv-type, when given, wins over the rules'
    const std::string flag =
        options.path == ComputePath::Gpu ? "--gpu " + std::to_string(options.gpu_index) : "--cpu-only";
    RulesPlan p = plan_for(model_path, &r, flag, topo, options.max_context);
    apply_plan(p.plan, model_path, options);
    options.kv_type = kv;
    return p;
  }
  // The automatic plan: a hardware GPU 0 takes everything but the routed experts, then whole
  // layers of experts while its memory lasts; without one, everything on the CPU. A software
  // Vulkan device (lavapipe) is never chosen on its own: it is slower than the CPU path.
  const bool hardware_gpu0 = !topo.gpus.empty() && !topo.gpus[0].software;
  if (!hardware_gpu0) topo.gpus.clear();
  const RulesPlan p = plan_for(model_path, nullptr, "automatic plan", topo, options.max_context);
  print_warnings(p);
  apply_plan(p.plan, model_path, options);
  return p;
}

}  // namespace tandem
