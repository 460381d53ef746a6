#include "placement/model_layout.h"

#include <gtest/gtest.h>

#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"

namespace tandem::placement {
namespace {

TEST(PlacementModelLayout, ReadsDimensionsAndTensorBytesFromTheHeader) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("deepseek2"));
  w.set("deepseek2.block_count", GgufValue::u32(2));
  w.set("deepseek2.expert_count", GgufValue::u32(4));
  w.set("deepseek2.attention.kv_lora_rank", GgufValue::u32(16));
  w.set("deepseek2.rope.dimension_count", GgufValue::u32(8));
  w.add_tensor("token_embd.weight", GgmlType::F16, {4, 2}, std::vector<uint8_t>(16, 1));
  w.add_tensor("blk.1.ffn_up_exps.weight", GgmlType::Q4_0, {32, 2, 4}, std::vector<uint8_t>(18 * 8, 2));
  const auto bytes = w.to_bytes();
  const auto f = GgufFile::parse(bytes.data(), bytes.size(), "m.gguf");
  const ModelLayout m = model_layout_from_gguf(*f);
  EXPECT_EQ(m.n_layer, 2);
  EXPECT_EQ(m.n_expert, 4);
  EXPECT_EQ(m.kv_lora_rank, 16);
  EXPECT_EQ(m.qk_rope, 8);
  ASSERT_EQ(m.tensors.size(), 2u);
  EXPECT_EQ(m.tensors[1].name, "blk.1.ffn_up_exps.weight");
  EXPECT_EQ(m.tensors[1].bytes, 18u * 8);

  Topology t = Topology::from_hwloc_synthetic("pack:2 numa:1(memory=1GiB) core:1 pu:1");
  const PlacementPlan p = make_plan(m, t, nullptr, {});
  ASSERT_EQ(p.layers[1].experts.size(), 4u);
  EXPECT_EQ(p.layers[1].experts[3], Device::cpu());
  // Weights + both layers' latent KV cache on the CPU at the default 4096 context.
  EXPECT_EQ(plan_budget(p, m, t, {}).host_total, 16u + 18u * 8 + 2u * (16 + 8) * 2 * 4096);
}

}  // namespace
}  // namespace tandem::placement
