// Each sampling stage on hand-made logits.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/core/error.h"
#include "runtime/sampling/sampling_stages.h"

namespace tandem {
namespace {

std::vector<int32_t> ids(const std::vector<TokenCandidate>& c) {
  std::vector<int32_t> r;
  for (const auto& t : c) r.push_back(t.id);
  return r;
}

// Candidates with the given probabilities (logit = log p), in id order.
std::vector<TokenCandidate> with_probs(const std::vector<float>& p) {
  std::vector<float> logits;
  for (float x : p) logits.push_back(std::log(x));
  auto c = make_candidates(logits);
  softmax(c);
  return c;
}

TEST(SamplingStages, ArgmaxPicksLargestAndBreaksTiesBySmallerId) {
  const std::vector<float> l = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
  EXPECT_EQ(argmax(make_candidates(l)), 1);
  const std::vector<float> neg = {-5.0f, -2.0f, -7.0f};
  EXPECT_EQ(argmax(make_candidates(neg)), 1);
  EXPECT_THROW(argmax({}), Error);
}

TEST(SamplingStages, SoftmaxMatchesHandComputedValues) {
  const std::vector<float> l = {0.0f, std::log(3.0f), 1000.0f - 1000.0f};
  auto c = make_candidates(l);
  softmax(c);
  EXPECT_NEAR(c[0].p, 0.2f, 1e-6);
  EXPECT_NEAR(c[1].p, 0.6f, 1e-6);
  EXPECT_NEAR(c[2].p, 0.2f, 1e-6);
  // Large logits do not overflow.
  const std::vector<float> big = {1000.0f, 1000.0f};
  auto b = make_candidates(big);
  softmax(b);
  EXPECT_NEAR(b[0].p, 0.5f, 1e-6);
}

TEST(SamplingStages, TopKKeepsTheKLargestInDescendingOrder) {
  const std::vector<float> l = {1.0f, 5.0f, 3.0f, 5.0f, 4.0f, 0.0f};
  auto c = make_candidates(l);
  top_k(c, 3);
  EXPECT_EQ(ids(c), (std::vector<int32_t>{1, 3, 4}));
  auto all = make_candidates(l);
  top_k(all, 0);  // off: everything, sorted
  EXPECT_EQ(ids(all), (std::vector<int32_t>{1, 3, 4, 2, 0, 5}));
  auto more = make_candidates(l);
  top_k(more, 100);
  EXPECT_EQ(more.size(), l.size());
}

TEST(SamplingStages, TopPKeepsTheSmallestPrefixReachingP) {
  // Sorted probabilities 0.5, 0.25, 0.15, 0.1.
  auto base = with_probs({0.15f, 0.5f, 0.1f, 0.25f});
  top_k(base, 0);
  ASSERT_EQ(ids(base), (std::vector<int32_t>{1, 3, 0, 2}));
  auto cut = [&](float p) {
    auto c = base;
    top_p(c, p);
    return ids(c);
  };
  // (Thresholds stay clear of the exact sums, which softmax reproduces only to rounding.)
  EXPECT_EQ(cut(0.49f), (std::vector<int32_t>{1}));          // 0.5 alone reaches it
  EXPECT_EQ(cut(0.51f), (std::vector<int32_t>{1, 3}));       // needs 0.75
  EXPECT_EQ(cut(0.74f), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(cut(0.76f), (std::vector<int32_t>{1, 3, 0}));    // needs 0.9
  EXPECT_EQ(cut(0.95f), (std::vector<int32_t>{1, 3, 0, 2}));
  EXPECT_EQ(cut(1.0f), (std::vector<int32_t>{1, 3, 0, 2}));
  EXPECT_EQ(cut(0.01f), (std::vector<int32_t>{1}));          // never empty
}

TEST(SamplingStages, MinPKeepsTokensAboveAFractionOfTheBest) {
  auto c = with_probs({0.4f, 0.3f, 0.19f, 0.11f});
  min_p(c, 0.5f);  // cut at 0.2
  EXPECT_EQ(ids(c), (std::vector<int32_t>{0, 1}));
  auto d = with_probs({0.4f, 0.3f, 0.19f, 0.11f});
  min_p(d, 0.25f);  // cut at 0.1
  EXPECT_EQ(ids(d), (std::vector<int32_t>{0, 1, 2, 3}));
  auto e = with_probs({0.4f, 0.3f, 0.19f, 0.11f});
  min_p(e, 0.99f);  // only the best survives
  EXPECT_EQ(ids(e), (std::vector<int32_t>{0}));
}

TEST(SamplingStages, TemperatureScalesLogits) {
  const std::vector<float> l = {2.0f, -4.0f};
  auto c = make_candidates(l);
  apply_temperature(c, 0.5f);
  EXPECT_FLOAT_EQ(c[0].logit, 4.0f);
  EXPECT_FLOAT_EQ(c[1].logit, -8.0f);
  EXPECT_THROW(apply_temperature(c, 0.0f), Error);
}

TEST(SamplingStages, PenaltiesHitOnlyRecentTokens) {
  const std::vector<float> l = {2.0f, -2.0f, 2.0f, 1.0f};
  const std::vector<int32_t> recent = {0, 1, 1, 3, 3, 3};
  auto rep = make_candidates(l);
  apply_penalties(rep, recent, {2.0f, 0.0f, 0.0f});
  EXPECT_FLOAT_EQ(rep[0].logit, 1.0f);   // positive: divided
  EXPECT_FLOAT_EQ(rep[1].logit, -4.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(rep[2].logit, 2.0f);   // not recent
  EXPECT_FLOAT_EQ(rep[3].logit, 0.5f);   // once, however often it occurred
  auto pf = make_candidates(l);
  apply_penalties(pf, recent, {1.0f, 0.5f, 0.25f});
  EXPECT_FLOAT_EQ(pf[0].logit, 2.0f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(pf[1].logit, -2.0f - 0.5f - 0.5f);
  EXPECT_FLOAT_EQ(pf[2].logit, 2.0f);
  EXPECT_FLOAT_EQ(pf[3].logit, 1.0f - 0.5f - 0.75f);
  // Also on a filtered, reordered list (found by id).
  auto sorted = make_candidates(l);
  top_k(sorted, 3);  // ids 0, 2, 3
  apply_penalties(sorted, recent, {2.0f, 0.0f, 0.0f});
  EXPECT_EQ(ids(sorted), (std::vector<int32_t>{0, 2, 3}));
  EXPECT_FLOAT_EQ(sorted[0].logit, 1.0f);
  EXPECT_FLOAT_EQ(sorted[1].logit, 2.0f);
  EXPECT_FLOAT_EQ(sorted[2].logit, 0.5f);
}

TEST(SamplingStages, DrawFollowsTheDistribution) {
  auto c = with_probs({0.5f, 0.3f, 0.2f});
  std::mt19937_64 rng(1234);
  const int n = 20000;
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i) ++counts[draw(c, rng)];
  // Binomial standard deviation at n = 20000 is <= 0.0036: 0.015 is over four of them.
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.015);
  // A zero-probability candidate is never drawn.
  std::vector<TokenCandidate> z = {{7, 0.0f, 0.0f}, {9, 0.0f, 1.0f}};
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(draw(z, rng), 9);
}

TEST(SamplingStages, Uniform01IsInRangeAndPlatformIndependent) {
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 1000; ++i) {
    const double u = uniform01(a);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    EXPECT_EQ(u, double(b() >> 11) * 0x1.0p-53);
  }
}

}  // namespace
}  // namespace tandem
