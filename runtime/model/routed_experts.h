// Where a MoE layer's routed experts are computed. The forward pass only routes; an
// implementation of this interface does the expert math (the reference below, or the CPU
// expert engine in experts/).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model/weight_matrix.h"

namespace tandem {

class RoutedExperts {
 public:
  virtual ~RoutedExperts() = default;
  // y[t] = sum_k weights[t*k_used + k] * down_e(silu(gate_e x[t]) * up_e x[t]),
  // e = ids[t*k_used + k]; y (n_tokens x hidden) is overwritten.
  virtual void forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids,
                       const float* weights, int64_t k_used, float* y) = 0;
};

struct ExpertLayerWeights {
  WeightMatrix gate, up, down;  // each n_expert stacked matrices
  int64_t n_expert = 0;
};

// Plain fp32 experts from dequantized weights: the oracle.
class ReferenceRoutedExperts : public RoutedExperts {
 public:
  // layers[i] may be empty (a dense layer): indexed by layer number.
  explicit ReferenceRoutedExperts(std::vector<ExpertLayerWeights> layers) : layers_(std::move(layers)) {}
  void forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids, const float* weights,
               int64_t k_used, float* y) override;

 private:
  std::vector<ExpertLayerWeights> layers_;
};

}  // namespace tandem
