#include "placement/memory_budget.h"

#include <gtest/gtest.h>

namespace tandem::placement {
namespace {

// A two-layer plan: layer 0 dense on gpu:0, layer 1 MoE with 4 experts, 1 on gpu:0 and 3 on CPU.
PlacementPlan small_plan(Device cpu_experts) {
  PlacementPlan p;
  p.context = 1000;
  p.layers.resize(2);
  p.layers[0].attention = Device::gpu(0);
  p.layers[1].attention = Device::gpu(0);
  p.layers[1].experts = {Device::gpu(0), cpu_experts, cpu_experts, cpu_experts};
  p.tensors["token_embd.weight"] = {Device::cpu(0), "default", 1000};
  p.tensors["blk.0.attn_q.weight"] = {Device::gpu(0), "default", 300};
  p.tensors["blk.1.ffn_up_exps.weight"] = {Device::cpu(), "r:1", 4000};
  return p;
}

BudgetInputs inputs() {
  BudgetInputs in;
  in.kv_lora_rank = 512;
  in.qk_rope = 64;
  in.n_expert = 4;
  in.gpu_workspace_bytes = 100;
  return in;
}

TEST(PlacementMemoryBudget, LatentKv) {
  // V3: (512 + 64) * 2 bytes * 4096 tokens = 4.5 MiB per layer.
  EXPECT_EQ(latent_kv_bytes_per_layer(512, 64, 4096), 4718592u);
}

TEST(PlacementMemoryBudget, ShardedOnTwoNodes) {
  Topology t = Topology::from_hwloc_synthetic("pack:2 numa:1(memory=1MiB) core:2 pu:1");
  t.add_gpu("g", 1ull << 30);
  const MemoryBudget b = compute_budget(small_plan(Device::cpu()), t, inputs());
  const uint64_t kv = 576u * 2 * 1000;
  EXPECT_EQ(b.kv_total, 2 * kv);
  EXPECT_EQ(b.gpu_kv[0], 2 * kv);
  EXPECT_EQ(b.gpu_weights[0], 300u + 1000u);  // attn_q + one expert's quarter of the tensor
  EXPECT_EQ(b.gpu_total[0], 300u + 1000u + 2 * kv + 100u);
  EXPECT_EQ(b.node_total[0], 1000u + 1500u);  // token_embd pinned to node 0, half of 3000
  EXPECT_EQ(b.node_total[1], 1500u);
  EXPECT_EQ(b.host_total, 4000u);
  EXPECT_TRUE(b.fits());
}

TEST(PlacementMemoryBudget, ReplicatedOnFourNodesAndProblems) {
  Topology t = Topology::from_hwloc_synthetic("pack:2 numa:2(memory=3000) core:1 pu:1");
  t.add_gpu("g", 4096);  // far too small for the KV cache
  const MemoryBudget b = compute_budget(small_plan(Device::cpu(Device::kAllNodes, true)), t, inputs());
  ASSERT_EQ(b.node_total.size(), 4u);
  EXPECT_EQ(b.node_total[0], 1000u + 3000u);
  for (size_t n = 1; n < 4; ++n) EXPECT_EQ(b.node_total[n], 3000u);
  EXPECT_EQ(b.host_total, 1000u + 4 * 3000u);
  EXPECT_FALSE(b.fits());
  ASSERT_EQ(b.problems.size(), 3u);  // gpu:0, cpu:numa0, host
  EXPECT_EQ(b.problems[0].rfind("gpu:0 needs", 0), 0u) << b.problems[0];
  EXPECT_EQ(b.problems[1].rfind("cpu:numa0 needs", 0), 0u) << b.problems[1];

  PlacementPlan p = small_plan(Device::cpu(7));
  const MemoryBudget m = compute_budget(p, t, inputs());
  EXPECT_NE(m.problems.back().find("cpu:numa7, which this machine does not have"), std::string::npos);
}

}  // namespace
}  // namespace tandem::placement
