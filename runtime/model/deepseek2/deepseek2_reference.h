// The plain CPU forward pass of deepseek2: fp32 math, weights dequantized on the fly, an fp32
// latent KV cache. It is the oracle that faster paths are checked against, so it favours being
// obviously correct over being fast (batch products still go through BLAS so tests stay quick).
#pragma once

#include <memory>
#include <vector>

#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/rope.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

class Deepseek2Reference : public CausalLm {
 public:
  // experts: where routed experts run; null selects ReferenceRoutedExperts.
  Deepseek2Reference(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts = nullptr);

  int64_t n_vocab() const override { return w_.hp.n_vocab; }
  int64_t n_past() const override { return n_past_; }
  void reset() override;
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;

  // All routed-expert layers' weights, for building other RoutedExperts implementations.
  static std::vector<ExpertLayerWeights> expert_layers(const Deepseek2Weights& w);

 private:
  void attention(int64_t il, const float* x, int64_t n, float* out);
  void feed_forward(int64_t il, const float* x, int64_t n, float* out);

  const Deepseek2Weights& w_;
  std::shared_ptr<RoutedExperts> experts_;
  Rope rope_;
  int64_t n_past_ = 0;
  // Latent cache per layer: normalised c_kv (kv_lora) and rotated k_pe (rope) per position.
  std::vector<std::vector<float>> cache_ckv_, cache_kpe_;
};

}  // namespace tandem
