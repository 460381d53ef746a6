#include "runtime/engine/plan_execution.h"

#include "runtime/core/error.h"

namespace tandem {
namespace {

using placement::Device;

int device_of(const Device& d) { return d.is_gpu() ? d.index : PlanExecution::kCpu; }

}  // namespace

PlanExecution plan_execution(const placement::PlacementPlan& plan, int64_t n_layers, int64_t first_moe_layer,
                             int64_t n_experts) {
  if (int64_t(plan.layers.size()) != n_layers)
    fail("placement: the plan has ", plan.layers.size(), " layers, the model ", n_layers);
  PlanExecution ex;
  ex.kv_cache_type = plan.kv_cache_type;
  ex.context = plan.context;
  const std::vector<int> gpus = plan.gpus();
  ex.uses_gpu = !gpus.empty();
  if (ex.uses_gpu) ex.gpu_index = uint32_t(gpus.front());
  ex.output_device = device_of(plan.output);
  ex.attention_device.resize(size_t(n_layers));
  ex.ffn_device.resize(size_t(n_layers));
  ex.gpu_experts.resize(size_t(n_layers));
  ex.cpu_expert_nodes.resize(size_t(n_layers));
  ex.expert_layout.assign(size_t(n_layers), placement::ExpertLayout::Auto);
  for (int64_t l = 0; l < n_layers; ++l) {
    const placement::LayerPlacement& L = plan.layers[size_t(l)];
    const std::string layer = "layer " + std::to_string(l);
    ex.attention_device[size_t(l)] = device_of(L.attention);
    if (l < first_moe_layer) {
      ex.ffn_device[size_t(l)] = device_of(L.dense_ffn);
      if (!L.experts.empty()) fail("placement: ", layer, " is dense but the plan places routed experts in it");
      continue;
    }
    // The router and the shared experts read the same normed input and run as one part.
    if (device_of(L.router) != device_of(L.shared_experts))
      fail("placement: ", layer, " router is on ", L.router.str(), " but its shared experts on ",
           L.shared_experts.str(), ": the engine runs a layer's router and shared experts on one device");
    const int ffn = device_of(L.router);
    ex.ffn_device[size_t(l)] = ffn;
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
        if (d.index != ffn)
          fail("placement: ", layer, " expert ", e, " is on ", d.str(), ", but the layer's router is on ",
               L.router.str(), ": routed experts can live on the GPU that runs their layer's router");
        on_gpu[size_t(e)] = 1;
      } else {
        nodes[size_t(e)] = d.replicate ? PlanExecution::kReplicated : d.index;
      }
    }
  }
  return ex;
}

}  // namespace tandem
