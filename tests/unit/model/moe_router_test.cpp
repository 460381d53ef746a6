#include <gtest/gtest.h>

#include <cmath>

#include "runtime/model/deepseek2/deepseek2_hparams.h"
#include "runtime/model/moe_router.h"

namespace tandem {
namespace {

TEST(MoeRouter, SoftmaxPicksLargestAndKeepsProbabilities) {
  MoeRouterConfig cfg{ExpertGating::Softmax, 4, 2, 1, 1, false, 1.0f};
  const float logits[4] = {0.0f, 2.0f, 1.0f, -1.0f};
  int32_t ids[2];
  float w[2];
  route_token(cfg, logits, nullptr, ids, w);
  const double z = std::exp(0.0) + std::exp(2.0) + std::exp(1.0) + std::exp(-1.0);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR(w[1], std::exp(1.0) / z, 1e-6);
}

TEST(MoeRouter, NormaliseThenScale) {
  MoeRouterConfig cfg{ExpertGating::Softmax, 4, 2, 1, 1, true, 2.5f};
  const float logits[4] = {0.0f, 2.0f, 1.0f, -1.0f};
  int32_t ids[2];
  float w[2];
  route_token(cfg, logits, nullptr, ids, w);
  const double a = std::exp(2.0), b = std::exp(1.0);
  EXPECT_NEAR(w[0], 2.5 * a / (a + b), 1e-5);
  EXPECT_NEAR(w[1], 2.5 * b / (a + b), 1e-5);
}

TEST(MoeRouter, SigmoidBiasChangesChoiceNotWeight) {
  MoeRouterConfig cfg{ExpertGating::Sigmoid, 3, 1, 1, 1, false, 1.0f};
  const float logits[3] = {1.0f, 0.5f, 0.0f};
  const float bias[3] = {0.0f, 0.0f, 1.0f};  // expert 2 wins selection: 0.5 + 1 > 0.73
  int32_t id;
  float w;
  route_token(cfg, logits, bias, &id, &w);
  EXPECT_EQ(id, 2);
  EXPECT_NEAR(w, 0.5f, 1e-6);  // sigmoid(0), without the bias
}

TEST(MoeRouter, GroupedTopKUsesSumOfTwoBestPerGroup) {
  // 3 groups of 2 experts; 1 group used. Group scores (sigmoid): g0 = s(3)+s(-3), g1 = s(1)+s(1),
  // g2 = s(2)+s(-5). g1 wins although expert 0 has the single largest score.
  MoeRouterConfig cfg{ExpertGating::Sigmoid, 6, 2, 3, 1, false, 1.0f};
  const float logits[6] = {3.0f, -3.0f, 1.0f, 1.0f, 2.0f, -5.0f};
  int32_t ids[2];
  float w[2];
  route_token(cfg, logits, nullptr, ids, w);
  EXPECT_TRUE((ids[0] == 2 && ids[1] == 3) || (ids[0] == 3 && ids[1] == 2));
}

}  // namespace
}  // namespace tandem
