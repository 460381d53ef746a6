#include "runtime/engine/cpu_routed_experts.h"

#include "runtime/core/error.h"

namespace tandem {

CpuRoutedExperts::CpuRoutedExperts(const std::vector<ExpertLayerWeights>& layers, MoeEngineOptions options)
    : engine_(std::make_unique<MoeEngine>(std::move(options))), engine_layer_(layers.size(), -1) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const ExpertLayerWeights& L = layers[i];
    if (L.n_expert == 0) continue;
    MoeLayerWeights w{L.gate.type, L.up.type, L.down.type, L.gate.data, L.up.data, L.down.data,
                      L.n_expert, L.gate.cols, L.gate.rows / L.n_expert};
    engine_layer_[i] = engine_->add_layer(w);
  }
}

void CpuRoutedExperts::forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids,
                               const float* weights, int64_t k_used, float* y) {
  if (layer < 0 || size_t(layer) >= engine_layer_.size() || engine_layer_[size_t(layer)] < 0)
    fail("layer ", layer, " has no routed experts");
  engine_->forward(engine_layer_[size_t(layer)], x, n_tokens, ids, weights, int(k_used), y);
}

}  // namespace tandem
