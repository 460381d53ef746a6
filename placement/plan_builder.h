// Makes a PlacementPlan from a model's tensor list (header only), a topology and optional rules.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "placement/memory_budget.h"
#include "placement/plan.h"
#include "placement/rules.h"
#include "placement/topology.h"

namespace tandem::placement {

struct ModelTensor {
  std::string name;
  uint64_t bytes = 0;
  // Resident bytes when placed on the CPU, as the expert engine lays them out (repacked or AMX
  // copies; experts/expert_memory.h); 0: the file's bytes. _gguf: the same with the prefill
  // layout off (rules' `layout: gguf`).
  uint64_t cpu_bytes = 0, cpu_bytes_gguf = 0;
};

// What the builder needs from a model header (GgufFile + Deepseek2Hparams fill it).
struct ModelLayout {
  int64_t n_layer = 0;
  int64_t n_expert = 0;  // routed experts per MoE layer
  int64_t kv_lora_rank = 0;
  int64_t qk_rope = 0;
  std::vector<ModelTensor> tensors;
  // Where the CPU layouts of experts take more than the file: what and the knob that avoids it.
  std::vector<std::string> notes;
};

struct PlanOptions {
  uint32_t context = 4096;
  std::string kv_cache_type;            // empty: rules' or "f16"
  uint64_t gpu_workspace_bytes = 512ull << 20;
};

// Throws Error for a rule naming a GPU or NUMA node the topology lacks, or a layer whose
// attention tensors land on different devices. Rules == nullptr: the automatic plan.
// Whether the plan fits is compute_budget's answer (see plan_budget).
PlacementPlan make_plan(const ModelLayout& model, const Topology& topology, const Rules* rules,
                        const PlanOptions& options);
MemoryBudget plan_budget(const PlacementPlan& plan, const ModelLayout& model, const Topology& topology,
                         const PlanOptions& options);

}  // namespace tandem::placement
