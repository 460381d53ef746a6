// RoutedExperts on the CPU expert engine (experts/): the fast path of `--cpu-only`, and of the
// hybrid engine where experts stay in DRAM.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "experts/moe_engine.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

class CpuRoutedExperts : public RoutedExperts {
 public:
  // layers indexed by layer number; empty entries (dense layers) are skipped. gpu_experts (by
  // layer; missing or empty: none) marks experts that live on a GPU: the engine skips them (no
  // memory, no work; their pairs contribute nothing here).
  // expert_nodes (by layer; missing or empty: all sharded): per expert the NUMA node whose pool
  // runs it, or -1 to shard it across the pools.
  CpuRoutedExperts(const std::vector<ExpertLayerWeights>& layers, MoeEngineOptions options,
                   const std::vector<std::vector<uint8_t>>& gpu_experts = {},
                   const std::vector<std::vector<int>>& expert_nodes = {});
  void forward(int64_t layer, const float* x, int64_t n_tokens, const int32_t* ids, const float* weights,
               int64_t k_used, float* y) override;
  const MoeEngine& engine() const { return *engine_; }

 private:
  std::unique_ptr<MoeEngine> engine_;
  std::vector<int> engine_layer_;  // model layer -> engine layer (-1: dense)
};

}  // namespace tandem
