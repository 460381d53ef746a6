// --route-skew: the router row factors of each layer run from 1 + S (one hottest expert) down
// to 1 (one coldest), differ between layers, and are all 1 without skew.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tools/modelgen/routing_skew.h"

using namespace tandem::modelgen;

TEST(RoutingSkew, FactorsSpanOneToOnePlusSAndDifferPerLayer) {
  Deepseek2Options o;
  o.n_experts = 16;
  o.gating = 1;
  for (int64_t e = 0; e < o.n_experts; ++e) EXPECT_EQ(router_row_scale(o, 1, e), 1.0f);
  o.route_skew = 4;
  std::vector<std::vector<float>> by_layer;
  for (int64_t l = 1; l < 4; ++l) {
    std::vector<float> f;
    for (int64_t e = 0; e < o.n_experts; ++e) f.push_back(router_row_scale(o, l, e));
    EXPECT_FLOAT_EQ(*std::max_element(f.begin(), f.end()), 5.0f);
    EXPECT_FLOAT_EQ(*std::min_element(f.begin(), f.end()), 1.0f);
    std::vector<float> sorted = f;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());  // a strict order of hotness
    by_layer.push_back(f);
  }
  EXPECT_NE(by_layer[0], by_layer[1]);
  EXPECT_EQ(router_row_scale(o, 1, 16), 1.0f);  // out of range: untouched
  // Sigmoid gating: the selection bias follows the same order (the hottest gets 0.05 * S), rows stay.
  Deepseek2Options sig = o;
  sig.gating = 2;
  for (int64_t e = 0; e < o.n_experts; ++e) {
    EXPECT_EQ(routing_bias_offset(o, 2, e), 0.0f);
    EXPECT_EQ(router_row_scale(sig, 2, e), 1.0f);
    EXPECT_NEAR(routing_bias_offset(sig, 2, e), 0.05f * (router_row_scale(o, 2, e) - 1.0f), 1e-6);
  }
}

TEST(RoutingSkew, RouterTensorLayer) {
  EXPECT_EQ(router_tensor_layer("blk.12.ffn_gate_inp.weight"), 12);
  EXPECT_EQ(router_tensor_layer("blk.x.ffn_gate_inp.weight"), -1);
  EXPECT_EQ(router_tensor_layer("blk.3.ffn_gate_exps.weight"), -1);
  EXPECT_EQ(router_tensor_layer("ffn_gate_inp.weight"), -1);
  EXPECT_EQ(routing_bias_tensor_layer("blk.4.exp_probs_b.bias"), 4);
  EXPECT_EQ(routing_bias_tensor_layer("blk.4.ffn_gate_inp.weight"), -1);
}
