#include "placement/tensor_kind.h"

#include <gtest/gtest.h>

namespace tandem::placement {
namespace {

TEST(PlacementTensorKind, ClassifiesDeepseek2Names) {
  struct Case {
    const char* name;
    TensorKind kind;
    int64_t layer;
  };
  for (const Case& c : {Case{"token_embd.weight", TensorKind::TokenEmbd, -1},
                        Case{"output_norm.weight", TensorKind::Output, -1},
                        Case{"output.weight", TensorKind::Output, -1},
                        Case{"blk.0.attn_norm.weight", TensorKind::Attention, 0},
                        Case{"blk.0.attn_kv_a_mqa.weight", TensorKind::Attention, 0},
                        Case{"blk.12.ffn_norm.weight", TensorKind::Attention, 12},
                        Case{"blk.0.ffn_up.weight", TensorKind::DenseFfn, 0},
                        Case{"blk.3.ffn_gate_inp.weight", TensorKind::Router, 3},
                        Case{"blk.3.exp_probs_b.bias", TensorKind::Router, 3},
                        Case{"blk.3.ffn_down_shexp.weight", TensorKind::SharedExperts, 3},
                        Case{"blk.60.ffn_gate_exps.weight", TensorKind::RoutedExperts, 60}}) {
    const auto got = classify_tensor(c.name);
    ASSERT_TRUE(got) << c.name;
    EXPECT_EQ(got->kind, c.kind) << c.name;
    EXPECT_EQ(got->layer, c.layer) << c.name;
  }
  for (const char* bad : {"blk.x.attn_q.weight", "blk..attn_q.weight", "blk.1.mystery.weight", "rope_freqs.weight"})
    EXPECT_FALSE(classify_tensor(bad)) << bad;
}

TEST(PlacementTensorKind, FirstMatchWinsAndExpertRangesSplit) {
  const Rules r = parse_rules_text(R"(rules:
  - match: {kind: routed_experts, layers: "3-5", experts: "0-15"}
    place: gpu:0
  - match: {name: "blk\\.4\\..*"}
    place: cpu:numa1
  - match: {kind: routed_experts}
    place: cpu
)",
                                   "r.yaml");
  const std::string exps = "blk.4.ffn_up_exps.weight";
  const TensorClass c = *classify_tensor(exps);
  EXPECT_EQ(first_matching_rule(r, exps, c, 3)->origin, "r.yaml:2");
  EXPECT_EQ(first_matching_rule(r, exps, c, 16)->origin, "r.yaml:4");  // name rule before the kind rule
  const std::string other = "blk.7.ffn_up_exps.weight";
  EXPECT_EQ(first_matching_rule(r, other, *classify_tensor(other), 3)->origin, "r.yaml:6");
  const std::string attn = "blk.7.attn_q_a.weight";
  EXPECT_EQ(first_matching_rule(r, attn, *classify_tensor(attn)), nullptr);
}

}  // namespace
}  // namespace tandem::placement
