// KTransformers optimize-rule files translated into plans: layer splits over two GPUs, experts
// on the CPU, the warnings for what has no meaning here, and errors that name the line.
#include "placement/ktransformers_rules.h"

#include <gtest/gtest.h>

#include "placement/plan_builder.h"
#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

// 40 layers, the first dense, 8 experts each.
ModelLayout forty_layers() {
  ModelLayout m;
  m.n_layer = 40;
  m.n_expert = 8;
  m.kv_lora_rank = 64;
  m.qk_rope = 16;
  m.tensors = {{"token_embd.weight", 1000}, {"output_norm.weight", 10}, {"output.weight", 1000}};
  for (int l = 0; l < 40; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    m.tensors.push_back({b + "attn_norm.weight", 10});
    m.tensors.push_back({b + "attn_q_a.weight", 100});
    if (l == 0) {
      m.tensors.push_back({b + "ffn_up.weight", 100});
      continue;
    }
    m.tensors.push_back({b + "ffn_gate_inp.weight", 10});
    m.tensors.push_back({b + "ffn_up_shexp.weight", 50});
    for (const char* e : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) m.tensors.push_back({b + e + ".weight", 800});
  }
  return m;
}

Topology two_gpus() {
  Topology t = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=64GiB) core:4 pu:1");
  t.add_gpu("a", 1ull << 30);
  t.add_gpu("b", 1ull << 30);
  return t;
}

// Written in the shape of the files KTransformers' users publish for DeepSeek (two GPUs).
const char* kTwoGpus = R"(- match:
    name: "^model.embed_tokens"
  replace:
    class: "default"
    kwargs:
      generate_device: "cpu"
      prefill_device: "cpu"
- match:
    name: "^model\\.layers\\.([0-9]|[12][0-9])\\."
    class: ktransformers.models.modeling_deepseek_v3.DeepseekV3Attention
  replace:
    class: ktransformers.operators.attention.KDeepseekV2Attention
    kwargs:
      generate_device: "cuda:0"
      prefill_device: "cuda:0"
- match:
    name: "^model\\.layers\\.([3-9][0-9])\\."
    class: ktransformers.models.modeling_deepseek_v3.DeepseekV3Attention
  replace:
    class: ktransformers.operators.attention.KDeepseekV2Attention
    kwargs:
      generate_device: "cuda:1"
      prefill_device: "cuda:1"
- match:
    name: "^model\\.layers\\..*\\.mlp\\.experts$"
  replace:
    class: ktransformers.operators.experts.KTransformersExperts
    kwargs:
      prefill_device: "cuda"
      prefill_op: "KExpertsTorch"
      generate_device: "cpu"
      generate_op: "KExpertsCPU"
  recursive: False
- match:
    name: "^model\\.layers\\.([0-9]|[12][0-9])\\.(?!self_attn).*$"
    class: torch.nn.Linear
  replace:
    class: ktransformers.operators.linear.KTransformersLinear
    kwargs:
      generate_device: "cuda:0"
      prefill_device: "cuda:0"
- match:
    name: "^model\\.layers\\.([3-9][0-9])\\."
  replace:
    class: "default"
    kwargs:
      generate_device: "cuda:1"
      prefill_device: "cuda:1"
      transfer_map:
        30: "cuda:1"
- match:
    name: "^lm_head"
    class: torch.nn.Linear
  replace:
    class: ktransformers.operators.linear.KTransformersLinear
    kwargs:
      generate_device: "cuda:1"
      prefill_device: "cuda:1"
)";

TEST(KTransformersRules, TwoGpuFileBecomesALayerSplitWithCpuExperts) {
  const Rules rules = parse_rules_text(kTwoGpus, "kt.yaml");
  const PlacementPlan p = make_plan(forty_layers(), two_gpus(), &rules, PlanOptions{});
  EXPECT_EQ(p.token_embd, Device::cpu());
  EXPECT_EQ(p.output, Device::gpu(1));
  EXPECT_EQ(p.layers[0].attention, Device::gpu(0));
  EXPECT_EQ(p.layers[0].dense_ffn, Device::gpu(0));  // its Linear children go to cuda:0
  EXPECT_EQ(p.layers[29].attention, Device::gpu(0));
  EXPECT_EQ(p.layers[30].attention, Device::gpu(1));
  EXPECT_EQ(p.layers[39].shared_experts, Device::gpu(1));
  EXPECT_EQ(p.layers[12].shared_experts, Device::gpu(0));
  for (int l = 1; l < 40; ++l)
    for (const Device& d : p.layers[size_t(l)].experts) EXPECT_EQ(d, Device::cpu()) << "layer " << l;
  EXPECT_NE(p.tensors.at("blk.35.attn_q_a.weight").rule.find("kt.yaml:16 (KTransformers)"), std::string::npos)
      << p.tensors.at("blk.35.attn_q_a.weight").rule;
  std::string all;
  for (const auto& w : p.warnings) all += w + "\n";
  EXPECT_NE(all.find("prefill_device cuda differs from generate_device cpu"), std::string::npos) << all;
  EXPECT_NE(all.find("transfer_map"), std::string::npos) << all;
  EXPECT_NE(all.find("operator choices"), std::string::npos) << all;
  EXPECT_EQ(all.find("matches nothing"), std::string::npos) << all;
}

TEST(KTransformersRules, UnmatchedModulesGoToTheFirstGpuAndCpuDevicesStay) {
  const Rules rules = parse_rules_text(
      "- match:\n    name: \"^model\\\\.layers\\\\.(1|2)\\\\.mlp\\\\.experts$\"\n  replace:\n    kwargs:\n"
      "      generate_device: cpu\n",
      "one.yaml");
  Topology t = two_gpus();
  const PlacementPlan p = make_plan(forty_layers(), t, &rules, PlanOptions{});
  EXPECT_EQ(p.layers[1].experts[0], Device::cpu());
  EXPECT_EQ(p.layers[2].experts[7], Device::cpu());
  EXPECT_EQ(p.layers[3].experts[0], Device::gpu(0));  // "^...(1|2)..." does not reach layer 3
  EXPECT_EQ(p.layers[12].experts[0], Device::gpu(0)) << "re.match anchors at the start only, and 12 != 1";
  EXPECT_EQ(p.layers[5].attention, Device::gpu(0));
}

TEST(KTransformersRules, ErrorsNameTheLine) {
  try {
    parse_rules_text("- match:\n    name: \"^model\\\\.(?P<x>layers)\"\n  replace: {}\n", "bad.yaml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:2:"), std::string::npos) << e.what();
  }
  const Rules npu =
      parse_rules_text("- match:\n    name: \"^lm_head\"\n  replace:\n    kwargs: {generate_device: \"npu:0\"}\n", "dev.yaml");
  ASSERT_FALSE(npu.warnings.empty());
  EXPECT_NE(npu.warnings[0].find("dev.yaml:4:"), std::string::npos) << npu.warnings[0];
  EXPECT_NE(npu.warnings[0].find("\"npu:0\" has no meaning here"), std::string::npos) << npu.warnings[0];
}

}  // namespace
}  // namespace tandem::placement
