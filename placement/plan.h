// PlacementPlan: where every tensor, layer part and routed expert of a model lives, as plain
// data. placement/ makes it (rules + topology + model header); tandem plan prints it;
// runtime/engine executes it. No rule types here: nothing that runs a plan sees how it was made.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tandem::placement {

// A place: a GPU (Vulkan device index) or the CPU. For the CPU, node >= 0 pins to that NUMA
// node's pool; node == kAllNodes shards across every node's pool; replicate keeps a copy per node.
struct Device {
  enum class Kind { Cpu, Gpu };
  static constexpr int kAllNodes = -1;
  Kind kind = Kind::Cpu;
  int index = kAllNodes;   // GPU: device index; CPU: NUMA node or kAllNodes
  bool replicate = false;  // CPU only: a copy of the weights on every node

  static Device gpu(int i) { return {Kind::Gpu, i, false}; }
  static Device cpu(int node = kAllNodes, bool replicate = false) { return {Kind::Cpu, node, replicate}; }
  bool is_gpu() const { return kind == Kind::Gpu; }
  bool is_cpu() const { return kind == Kind::Cpu; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "gpu:0", "cpu", "cpu:numa1", "cpu:replicate"
};

// CPU weight layout for routed experts: Auto lets the expert engine decide (repacked where a
// layout exists and memory allows), Repacked forces it, Gguf keeps the file's bytes.
enum class ExpertLayout { Auto, Repacked, Gguf };

// The parts of one transformer layer. `attention` covers every attn_* tensor, the layer's norms
// and its KV cache; `ffn` is the dense FFN (dense layers) and `router` + `shared_experts` are
// the MoE layer's gate and shared experts. `experts[e]` is routed expert e's owner (empty for a
// dense layer).
struct LayerPlacement {
  Device attention;
  Device dense_ffn;
  Device router;
  Device shared_experts;
  std::vector<Device> experts;
  ExpertLayout expert_layout = ExpertLayout::Auto;
};

struct TensorPlacement {
  Device device;
  std::string rule;  // "file:line" of the rule that placed it, or "default" / "automatic plan"
  uint64_t bytes = 0;
  uint64_t cpu_bytes = 0;       // resident bytes on the CPU (the engine's layouts); 0: bytes
  uint64_t cpu_bytes_gguf = 0;  // the same for a layer with `layout: gguf`
};

struct PlacementPlan {
  Device token_embd;
  Device output;  // output_norm and output (the head)
  std::vector<LayerPlacement> layers;
  std::map<std::string, TensorPlacement> tensors;  // every GGUF tensor by name
  std::string kv_cache_type = "f16";               // "f16" | "bf16"
  uint32_t context = 0;                            // KV cache rows the budget was made for
  // Prompts of at least this many tokens stream CPU-placed experts to a GPU (0: never).
  int64_t experts_on_gpu_from_tokens = 0;
  std::vector<std::string> warnings;
  std::vector<std::string> notes;  // ModelLayout::notes: CPU layouts larger than the file

  // GPUs the plan uses, ascending.
  std::vector<int> gpus() const;
  bool uses_gpu() const { return !gpus().empty(); }
};

}  // namespace tandem::placement
