#include "placement/memory_budget.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "placement/tensor_kind.h"

namespace tandem::placement {

uint64_t latent_kv_bytes_per_layer(int64_t kv_lora_rank, int64_t qk_rope, uint32_t context) {
  return uint64_t(kv_lora_rank + qk_rope) * 2u * context;
}

namespace {

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  return buf;
}

}  // namespace

MemoryBudget compute_budget(const PlacementPlan& plan, const Topology& topo, const BudgetInputs& in) {
  MemoryBudget b;
  const size_t n_gpu = topo.gpus.size(), n_node = topo.nodes.size();
  b.gpu_weights.assign(n_gpu, 0);
  b.gpu_kv.assign(n_gpu, 0);
  b.gpu_total.assign(n_gpu, 0);
  b.gpu_capacity.assign(n_gpu, 0);
  for (size_t g = 0; g < n_gpu; ++g) b.gpu_capacity[g] = topo.gpus[g].device_local_bytes;
  b.node_total.assign(n_node, 0);
  b.node_capacity.assign(n_node, 0);
  for (size_t n = 0; n < n_node; ++n) b.node_capacity[n] = topo.nodes[n].memory_bytes;
  std::set<std::string> missing;

  auto add = [&](const Device& d, uint64_t bytes, bool kv) {
    if (d.is_gpu()) {
      if (d.index < 0 || size_t(d.index) >= n_gpu) {
        missing.insert(d.str());
        return;
      }
      (kv ? b.gpu_kv : b.gpu_weights)[size_t(d.index)] += bytes;
      return;
    }
    if (d.replicate) {
      for (size_t n = 0; n < n_node; ++n) b.node_total[n] += bytes;
      b.host_total += bytes * n_node;
    } else if (d.index == Device::kAllNodes) {
      for (size_t n = 0; n < n_node; ++n) b.node_total[n] += bytes / n_node + (n < bytes % n_node ? 1 : 0);
      b.host_total += bytes;
    } else if (size_t(d.index) >= n_node) {
      missing.insert(d.str());
    } else {
      b.node_total[size_t(d.index)] += bytes;
      b.host_total += bytes;
    }
  };

  for (const auto& [name, t] : plan.tensors) {
    // On the CPU a tensor takes what the engine's layout of it takes (cpu_bytes), on a GPU its bytes.
    const auto c = classify_tensor(name);
    const bool gguf_layout = c && c->layer >= 0 && size_t(c->layer) < plan.layers.size() &&
                             plan.layers[size_t(c->layer)].expert_layout == ExpertLayout::Gguf;
    const uint64_t cpu_bytes = gguf_layout ? t.cpu_bytes_gguf : t.cpu_bytes;
    auto add_weights = [&](const Device& d, uint64_t share, uint64_t of) {
      const uint64_t bytes =
          d.is_gpu() || cpu_bytes == 0 || of == 0 ? share : uint64_t(double(share) * double(cpu_bytes) / double(of));
      add(d, bytes, false);
    };
    const bool split = c && c->kind == TensorKind::RoutedExperts && c->layer >= 0 &&
                       size_t(c->layer) < plan.layers.size() && !plan.layers[size_t(c->layer)].experts.empty();
    if (!split) {
      add_weights(t.device, t.bytes, t.bytes);
      continue;
    }
    const std::vector<Device>& owners = plan.layers[size_t(c->layer)].experts;
    const uint64_t per_expert = t.bytes / owners.size();
    for (const Device& d : owners) add_weights(d, per_expert, t.bytes);
  }
  const uint64_t kv_layer = latent_kv_bytes_per_layer(in.kv_lora_rank, in.qk_rope, plan.context);
  for (const LayerPlacement& l : plan.layers) {
    add(l.attention, kv_layer, true);
    b.kv_total += kv_layer;
  }
  const std::vector<int> used = plan.gpus();
  for (size_t g = 0; g < n_gpu; ++g) {
    const bool in_use = std::find(used.begin(), used.end(), int(g)) != used.end();
    b.gpu_total[g] = b.gpu_weights[g] + b.gpu_kv[g] + (in_use ? in.gpu_workspace_bytes : 0);
    if (b.gpu_total[g] > b.gpu_capacity[g])
      b.problems.push_back("gpu:" + std::to_string(g) + " needs " + gib(b.gpu_total[g]) + " (weights " +
                           gib(b.gpu_weights[g]) + ", KV cache " + gib(b.gpu_kv[g]) + ") but has " +
                           gib(b.gpu_capacity[g]) + ": move routed experts or layers to the CPU, or lower --ctx");
  }
  for (size_t n = 0; n < n_node && n_node > 1; ++n)  // one node: the host line says it
    if (b.node_total[n] > b.node_capacity[n])
      b.problems.push_back("cpu:numa" + std::to_string(n) + " needs " + gib(b.node_total[n]) + " but has " +
                           gib(b.node_capacity[n]) + ": shard experts across nodes instead of replicating or pinning");
  b.host_capacity = topo.host_memory_bytes();
  if (b.host_total > b.host_capacity)
    b.problems.push_back("host needs " + gib(b.host_total) + " but has " + gib(b.host_capacity) +
                         ": put more on the GPUs or use a smaller quantization");
  for (const std::string& d : missing)
    b.problems.push_back("the plan places weights on " + d + ", which this machine does not have");
  return b;
}

}  // namespace tandem::placement
