#include "runtime/engine/cpu_routed_experts.h"

#include "runtime/core/error.h"

namespace tandem {

CpuRoutedExperts::CpuRoutedExperts(const std::vector<ExpertLayerWeights>& layers, MoeEngineOptions options,
                                   const std::vector<std::vector<uint8_t>>& gpu_experts,
                                   const std::vector<std::vector<int>>& expert_nodes)
    : engine_(std::make_unique<MoeEngine>(std::move(options))), engine_layer_(layers.size(), -1) {
  if (gpu_experts.size() > layers.size())
    fail("GPU experts given for ", gpu_experts.size(), " layers; the model has ", layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const ExpertLayerWeights& L = layers[i];
    const std::vector<uint8_t> none;
    const std::vector<uint8_t>& on_gpu = i < gpu_experts.size() ? gpu_experts[i] : none;
    if (L.n_expert == 0) {
      if (!on_gpu.empty()) fail("GPU experts given for layer ", i, ", which has no routed experts");
      continue;
    }
    if (!on_gpu.empty() && int64_t(on_gpu.size()) != L.n_expert)
      fail("GPU experts of layer ", i, ": a mask of ", on_gpu.size(), " entries for ", L.n_expert, " experts");
    std::vector<uint8_t> owned;  // the complement of the GPU's experts; empty: all
    for (uint8_t g : on_gpu) owned.push_back(g ? 0 : 1);
    MoeLayerWeights w{L.gate.type, L.up.type, L.down.type, L.gate.data, L.up.data, L.down.data,
                      L.n_expert, L.gate.cols, L.gate.rows / L.n_expert};
    const std::vector<int> sharded;
    engine_layer_[i] = engine_->add_layer(w, owned, i < expert_nodes.size() ? expert_nodes[i] : sharded);
  }
}

void CpuRoutedExperts::forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids,
                               const float* weights, int64_t k_used, float* y) {
  if (layer < 0 || size_t(layer) >= engine_layer_.size() || engine_layer_[size_t(layer)] < 0)
    fail("layer ", layer, " has no routed experts");
  engine_->forward(engine_layer_[size_t(layer)], x, n_tokens, ids, weights, int(k_used), y);
}

}  // namespace tandem
