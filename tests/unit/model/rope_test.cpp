#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/model/rope.h"

namespace tandem {
namespace {

TEST(Rope, PlainAnglesFollowBaseFrequencies) {
  RopeParams p;
  p.n_dims = 8;
  p.freq_base = 10000.0f;
  Rope rope(p);
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_NEAR(rope.angle(i, 7), 7.0 * std::pow(10000.0, -2.0 * double(i) / 8.0), 1e-5);
}

TEST(Rope, RotatesInterleavedPairsAndKeepsNorm) {
  RopeParams p;
  p.n_dims = 4;
  Rope rope(p);
  std::vector<float> x = {1.0f, 0.0f, 0.0f, 1.0f};
  rope.apply(x.data(), 1);
  // pair 0 angle 1 rad: (1,0) -> (cos 1, sin 1); pair 1 angle 0.01: (0,1) -> (-sin, cos)
  EXPECT_NEAR(x[0], std::cos(1.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(1.0), 1e-6);
  EXPECT_NEAR(x[2], -std::sin(0.01), 1e-6);
  EXPECT_NEAR(x[3], std::cos(0.01), 1e-6);
}

TEST(Rope, YarnKeepsHighFrequenciesAndInterpolatesLowOnes) {
  // 16 dims, original context 4096, base 1e4, factor 40: the ramp runs from pair 2 to pair 6
  // (YaRN's correction range for beta_fast 32 and beta_slow 1).
  RopeParams p;
  p.n_dims = 16;
  p.freq_base = 10000.0f;
  p.freq_scale = 1.0f / 40.0f;
  p.yarn = true;
  p.yarn_orig_ctx = 4096;
  Rope rope(p);
  const int64_t pos = 100;
  auto plain = [&](int64_t i) { return double(pos) * std::pow(10000.0, -2.0 * double(i) / 16.0); };
  for (int64_t i = 0; i <= 2; ++i) EXPECT_NEAR(rope.angle(i, pos), plain(i), 1e-3 * plain(i));
  for (int64_t i = 6; i < 8; ++i) EXPECT_NEAR(rope.angle(i, pos), plain(i) / 40.0, 1e-3 * plain(i));
  // pair 4 sits halfway: mix 0.5 between the two.
  EXPECT_NEAR(rope.angle(4, pos), 0.5 * plain(4) + 0.5 * plain(4) / 40.0, 1e-3 * plain(4));
}

}  // namespace
}  // namespace tandem
