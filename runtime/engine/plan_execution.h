// What the engine runs for a PlacementPlan: the plan says where each part of a model lives;
// this turns it into the choices of the forward passes and engines that exist (the CPU pass for
// a plan without a GPU; otherwise the hybrid pass on the step scheduler, with each layer's
// attention and FFN part on its GPU or the CPU; the expert engine's per-expert owners) and
// refuses, naming the layer and the part, a plan that none of them can execute yet. Plain data
// in, plain data out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "placement/plan.h"

namespace tandem {

struct PlanExecution {
  bool uses_gpu = false;  // false: the whole model on the CPU pass
  uint32_t gpu_index = 0;  // the first GPU the plan uses
  // Per model layer: the device of its attention (with the KV cache) and of its FFN part (dense
  // FFN, or router + shared experts): a GPU index or kCpu. The output head's likewise.
  static constexpr int kCpu = -1;
  std::vector<int> attention_device, ffn_device;
  int output_device = kCpu;
  // Per model layer (empty for a dense layer), per routed expert: 1 = it lives on the GPU.
  std::vector<std::vector<uint8_t>> gpu_experts;
  // Per model layer, per routed expert on the CPU: its NUMA node, placement::Device::kAllNodes
  // (sharded across the nodes' pools), kReplicated (a copy per node) or kNotOnCpu.
  static constexpr int kReplicated = -2;
  static constexpr int kNotOnCpu = -3;
  std::vector<std::vector<int>> cpu_expert_nodes;
  // Per model layer: the CPU experts' layout (Auto / Repacked / Gguf).
  std::vector<placement::ExpertLayout> expert_layout;
  std::string kv_cache_type = "f16";
  uint32_t context = 0;
};

// n_layers: the model's block count; first_moe_layer: layers below it are dense.
// Throws Error naming the first part the engine cannot run where the plan puts it.
PlanExecution plan_execution(const placement::PlacementPlan& plan, int64_t n_layers, int64_t first_moe_layer,
                             int64_t n_experts);

}  // namespace tandem
