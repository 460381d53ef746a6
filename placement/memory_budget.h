// Memory a plan needs on every GPU, every NUMA node and the host, against what the topology has.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "placement/plan.h"
#include "placement/topology.h"

namespace tandem::placement {

// deepseek2's latent KV cache: (kv_lora_rank + qk_rope) values of 2 bytes (f16/bf16) per token
// per layer, on the device holding that layer's attention.
uint64_t latent_kv_bytes_per_layer(int64_t kv_lora_rank, int64_t qk_rope, uint32_t context);

struct BudgetInputs {
  int64_t kv_lora_rank = 0;
  int64_t qk_rope = 0;
  int64_t n_expert = 0;                     // routed experts per MoE layer (tensor bytes split evenly)
  uint64_t gpu_workspace_bytes = 512ull << 20;  // activations, scratch per GPU used
};

struct MemoryBudget {
  std::vector<uint64_t> gpu_weights, gpu_kv, gpu_total, gpu_capacity;  // by GPU index
  std::vector<uint64_t> node_total, node_capacity;                     // by NUMA node
  uint64_t host_total = 0, host_capacity = 0, kv_total = 0;
  std::vector<std::string> problems;  // one line per device that does not fit, saying what to change

  bool fits() const { return problems.empty(); }
};

// Sums plan.tensors' bytes per device (routed expert tensors split per expert by
// plan.layers[l].experts; sharded CPU weights split evenly across nodes, replicated ones counted
// on each node) plus KV cache and GPU workspace; devices the topology lacks are problems too.
MemoryBudget compute_budget(const PlacementPlan& plan, const Topology& topology, const BudgetInputs& in);

}  // namespace tandem::placement
