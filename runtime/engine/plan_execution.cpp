#include "runtime/engine/plan_execution.h"

#include "runtime/core/error.h"

namespace tandem {
namespace {

using placement::Device;

// Every part that is not a routed expert must sit on one device: the hybrid pass runs one GPU's
// layer program with the experts beside it, the CPU pass everything. Mixed layers (one layer's
// attention on the CPU, the next on the GPU) and layer ranges over several GPUs need the
// scheduler's device hand-over, which the engine does not have yet.
void require_same(const Device& want, const Device& got, const std::string& what) {
  const bool same = want.kind == got.kind && (want.is_cpu() || want.index == got.index);
  if (!same)
    fail("placement: ", what, " is on ", got.str(), " but the rest of the model is on ", want.str(),
         ": this engine runs every part but the routed experts on one device (attention, dense FFN, router and "
         "shared experts of all layers and the output head together on one GPU or all on the CPU)");
}

}  // namespace

PlanExecution plan_execution(const placement::PlacementPlan& plan, int64_t n_layers, int64_t first_moe_layer,
                             int64_t n_experts) {
  if (int64_t(plan.layers.size()) != n_layers)
    fail("placement: the plan has ", plan.layers.size(), " layers, the model ", n_layers);
  PlanExecution ex;
  ex.kv_cache_type = plan.kv_cache_type;
  ex.context = plan.context;
  const Device home = plan.layers.empty() ? plan.output : plan.layers[0].attention;
  ex.uses_gpu = home.is_gpu();
  if (ex.uses_gpu) ex.gpu_index = uint32_t(home.index);
  require_same(home, plan.output, "the output head");
  ex.gpu_experts.resize(size_t(n_layers));
  ex.cpu_expert_nodes.resize(size_t(n_layers));
  ex.expert_layout.assign(size_t(n_layers), placement::ExpertLayout::Auto);
  for (int64_t l = 0; l < n_layers; ++l) {
    const placement::LayerPlacement& L = plan.layers[size_t(l)];
    const std::string layer = "layer " + std::to_string(l);
    require_same(home, L.attention, layer + " attention");
    if (l < first_moe_layer) {
      require_same(home, L.dense_ffn, layer + " dense FFN");
      if (!L.experts.empty()) fail("placement: ", layer, " is dense but the plan places routed experts in it");
      continue;
    }
    require_same(home, L.router, layer + " router");
    require_same(home, L.shared_experts, layer + " shared experts");
    if (int64_t(L.experts.size()) != n_experts)
      fail("placement: ", layer, " places ", L.experts.size(), " routed experts, the model has ", n_experts);
    ex.expert_layout[size_t(l)] = L.expert_layout;
    auto& on_gpu = ex.gpu_experts[size_t(l)];
    auto& nodes = ex.cpu_expert_nodes[size_t(l)];
    on_gpu.assign(size_t(n_experts), 0);
    nodes.assign(size_t(n_experts), PlanExecution::kNotOnCpu);
    for (int64_t e = 0; e < n_experts; ++e) {
      const Device& d = L.experts[size_t(e)];
      if (d.is_gpu()) {
        if (!ex.uses_gpu || uint32_t(d.index) != ex.gpu_index)
          fail("placement: ", layer, " expert ", e, " is on ", d.str(), ", but ",
               ex.uses_gpu ? "the model runs on gpu:" + std::to_string(ex.gpu_index)
                           : std::string("the rest of the model is on the CPU"),
               ": routed experts can live on the GPU that runs their layer");
        on_gpu[size_t(e)] = 1;
      } else {
        nodes[size_t(e)] = d.replicate ? PlanExecution::kReplicated : d.index;
      }
    }
  }
  return ex;
}

}  // namespace tandem
