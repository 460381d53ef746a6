// The Sampler pipeline: validation, greedy, seeds, stop tokens, penalties window.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/core/error.h"
#include "runtime/sampling/sampler.h"

namespace tandem {
namespace {

std::string error_of(const SamplerConfig& c) {
  try {
    validate(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Sampler, InvalidSettingsNameTheOption) {
  SamplerConfig c;
  EXPECT_EQ(error_of(c), "");
  c.temperature = -0.1f;
  EXPECT_NE(error_of(c).find("--temp"), std::string::npos);
  c = {};
  c.temperature = NAN;
  EXPECT_NE(error_of(c).find("--temp"), std::string::npos);
  c = {};
  c.top_p = 0.0f;
  EXPECT_NE(error_of(c).find("--top-p"), std::string::npos);
  c.top_p = 1.5f;
  EXPECT_NE(error_of(c).find("--top-p"), std::string::npos);
  c = {};
  c.top_k = -1;
  EXPECT_NE(error_of(c).find("--top-k"), std::string::npos);
  c = {};
  c.min_p = 1.0f;
  EXPECT_NE(error_of(c).find("--min-p"), std::string::npos);
  c = {};
  c.repeat_penalty = 0.0f;
  EXPECT_NE(error_of(c).find("--repeat-penalty"), std::string::npos);
  c = {};
  c.penalty_window = -3;
  EXPECT_NE(error_of(c).find("--repeat-last-n"), std::string::npos);
  c = {};
  c.top_p = 2.0f;
  EXPECT_THROW(Sampler{c}, Error);
}

TEST(Sampler, TemperatureZeroIsGreedy) {
  SamplerConfig c;
  c.temperature = 0.0f;
  Sampler s(c);
  const std::vector<float> l = {0.1f, 0.2f, 7.0f, 6.9f};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(l), 2);
}

TEST(Sampler, SameSeedSameChoicesAndResetRestarts) {
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0.0f;
  c.seed = 99;
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = float(i % 7) * 0.3f;
  Sampler a(c), b(c);
  std::vector<int32_t> first;
  for (int i = 0; i < 200; ++i) {
    const int32_t x = a.sample(l);
    EXPECT_EQ(x, b.sample(l));
    first.push_back(x);
  }
  a.reset();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(a.sample(l), first[size_t(i)]);
  c.seed = 100;
  Sampler other(c);
  int same = 0;
  for (int i = 0; i < 200; ++i) same += other.sample(l) == first[size_t(i)];
  EXPECT_LT(same, 100);  // a different seed is a different stream
}

TEST(Sampler, DistributionMatchesSoftmaxWithTemperature) {
  SamplerConfig c;
  c.temperature = 2.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0.0f;
  c.seed = 7;
  Sampler s(c);
  // Logits 2*log(p): at temperature 2 the distribution is p.
  const std::vector<float> p = {0.1f, 0.6f, 0.3f};
  std::vector<float> l;
  for (float x : p) l.push_back(2.0f * std::log(x));
  const int n = 20000;
  std::map<int32_t, int> counts;
  for (int i = 0; i < n; ++i) ++counts[s.sample(l)];
  for (int32_t id = 0; id < 3; ++id) EXPECT_NEAR(counts[id] / double(n), p[size_t(id)], 0.015) << id;
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  const std::vector<float> l = {1.0f, 3.0f, 2.0f, 2.5f};
  SamplerConfig k;
  k.temperature = 1.5f;
  k.top_k = 1;
  Sampler sk(k);
  SamplerConfig p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1e-6f;
  Sampler sp(p);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(sk.sample(l), 1);
    EXPECT_EQ(sp.sample(l), 1);
  }
}

TEST(Sampler, MinPRemovesUnlikelyTokens) {
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.min_p = 0.5f;
  Sampler s(c);
  // p = 0.5, 0.3, 0.2: the cut is 0.25, so id 2 must never appear.
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  for (int i = 0; i < 2000; ++i) EXPECT_NE(s.sample(l), 2);
}

TEST(Sampler, StopTokens) {
  SamplerConfig c;
  c.stop_tokens = {5, 9};
  Sampler s(c);
  EXPECT_TRUE(s.is_stop(5));
  EXPECT_TRUE(s.is_stop(9));
  EXPECT_FALSE(s.is_stop(6));
  s.add_stop_token(6);
  EXPECT_TRUE(s.is_stop(6));
}

TEST(Sampler, RepeatPenaltyWindowSlides) {
  SamplerConfig c;
  c.temperature = 0.0f;
  c.repeat_penalty = 10.0f;
  c.penalty_window = 2;
  Sampler s(c);
  const std::vector<float> l = {5.0f, 4.0f, 3.0f};
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(l), 1);  // 0 is penalised to 0.5
  s.accept(1);
  EXPECT_EQ(s.sample(l), 2);  // 0 and 1 are both in the window of 2
  s.accept(2);
  EXPECT_EQ(s.sample(l), 0);  // 0 slid out of the window
  s.reset();
  EXPECT_EQ(s.sample(l), 0);
}

}  // namespace
}  // namespace tandem
