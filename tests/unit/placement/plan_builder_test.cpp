#include "placement/plan_builder.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// 4 layers (layer 0 dense), 8 experts, each layer's routed experts 3 x 800 MiB.
ModelLayout model() {
  ModelLayout m;
  m.n_layer = 4;
  m.n_expert = 8;
  m.kv_lora_rank = 512;
  m.qk_rope = 64;
  m.tensors = {{"token_embd.weight", 100 * kMiB}, {"output_norm.weight", 1}, {"output.weight", 100 * kMiB}};
  for (int l = 0; l < 4; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m.tensors.push_back({b + "attn_norm.weight", 1});
    m.tensors.push_back({b + "attn_q_a.weight", 10 * kMiB});
    if (l == 0) {
      m.tensors.push_back({b + "ffn_up.weight", 20 * kMiB});
      continue;
    }
    m.tensors.push_back({b + "ffn_gate_inp.weight", kMiB});
    m.tensors.push_back({b + "ffn_up_shexp.weight", 5 * kMiB});
    for (const char* e : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) m.tensors.push_back({b + e + ".weight", 800 * kMiB});
  }
  return m;
}

Topology two_nodes_two_gpus(uint64_t vram) {
  Topology t = Topology::from_hwloc_synthetic("pack:2 numa:1(memory=64GiB) core:2 pu:1");
  t.add_gpu("a", vram);
  t.add_gpu("b", vram);
  return t;
}

TEST(PlacementPlanBuilder, AutomaticFillsWholeExpertLayersIntoVram) {
  // 7 GiB: dense ~278 MiB + KV 18 MiB + workspace 512 + margin (5% + 512 = 870) leave 5490 MiB:
  // two layers of 3 x 800 MiB fit, a third does not.
  const PlacementPlan p = make_plan(model(), two_nodes_two_gpus(7ull << 30), nullptr, {});
  EXPECT_EQ(p.token_embd, Device::gpu(0));
  EXPECT_EQ(p.layers[0].experts.size(), 0u);
  EXPECT_EQ(p.layers[1].experts[7], Device::gpu(0));
  EXPECT_EQ(p.layers[2].experts[0], Device::gpu(0));
  EXPECT_EQ(p.layers[3].experts[0], Device::cpu());
  EXPECT_EQ(p.tensors.at("blk.3.ffn_up_exps.weight").rule, "automatic plan");
  EXPECT_TRUE(plan_budget(p, model(), two_nodes_two_gpus(7ull << 30), {}).fits());

  const PlacementPlan cpu = make_plan(model(), Topology::from_hwloc_synthetic("pack:2 numa:1(memory=64GiB) core:2 pu:1"), nullptr, {});
  EXPECT_FALSE(cpu.uses_gpu());
}

TEST(PlacementPlanBuilder, RulesSplitExpertsAndNameTheirLine) {
  const Rules r = parse_rules_text(R"(rules:
  - match: {kind: routed_experts, layers: "2", experts: "0-1"}
    place: gpu:1
  - match: {kind: routed_experts}
    place: cpu:numa1
  - match: {kind: attention, layers: "3"}
    place: cpu
defaults: {place: gpu:0}
)",
                                   "r.yaml");
  const PlacementPlan p = make_plan(model(), two_nodes_two_gpus(24ull << 30), &r, {});
  EXPECT_EQ(p.layers[2].experts[1], Device::gpu(1));
  EXPECT_EQ(p.layers[2].experts[2], Device::cpu(1));
  EXPECT_EQ(p.layers[3].attention, Device::cpu());
  EXPECT_EQ(p.tensors.at("blk.3.attn_q_a.weight").rule, "r.yaml:6");
  EXPECT_EQ(p.tensors.at("output.weight").rule, "r.yaml:8");
  EXPECT_EQ(p.tensors.at("blk.2.ffn_up_exps.weight").rule, "r.yaml:2 (split by experts)");
  EXPECT_EQ(p.gpus(), (std::vector<int>{0, 1}));
  const MemoryBudget b = plan_budget(p, model(), two_nodes_two_gpus(24ull << 30), {});
  EXPECT_EQ(b.gpu_weights[1], 2 * 3 * 100 * kMiB);  // 2 of 8 experts of three 800 MiB tensors
}

TEST(PlacementPlanBuilder, ValidationErrors) {
  auto error = [](const std::string& text) {
    const Rules r = parse_rules_text(text, "r.yaml");
    try {
      make_plan(model(), two_nodes_two_gpus(24ull << 30), &r, {});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error("rules:\n  - match: {kind: output}\n    place: gpu:2\n"),
            "r.yaml:2: gpu:2 does not exist (this machine has 2 GPU(s))");
  EXPECT_EQ(error("defaults: {place: cpu:numa5}\n"), "r.yaml:1: cpu:numa5 does not exist (this machine has 2 NUMA node(s))");
  EXPECT_NE(error("rules:\n  - match: {name: \"blk\\\\.1\\\\.attn_norm.*\"}\n    place: cpu\n").find("attention is split"),
            std::string::npos);
}

}  // namespace
}  // namespace tandem::placement
