// RoPE (normal and NeoX pairing, with and without YaRN) against a double-precision CPU version of
// the same definition.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/gpu/rope.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

void rope_reference(std::vector<float>& x, const std::vector<int32_t>& pos, const RopeLayout& l, const RopeParams& p) {
  float lo = 0, hi = 0;
  if (p.ext_factor != 0) yarn_corr_dims(p, lo, hi);
  for (uint32_t t = 0; t < l.n_tokens; ++t)
    for (uint32_t h = 0; h < l.n_heads; ++h)
      for (uint32_t i = 0; i < p.dim / 2; ++i) {
        const double extrap = pos[t] * std::pow(double(p.freq_base), -2.0 * i / p.dim);
        const double interp = p.freq_scale * extrap;
        double theta = interp, mscale = p.attn_factor;
        if (p.ext_factor != 0) {
          const double y = (i - lo) / std::max(0.001, double(hi - lo));
          const double mix = (1 - std::clamp(y, 0.0, 1.0)) * p.ext_factor;
          theta = interp * (1 - mix) + extrap * mix;
          mscale *= 1 + 0.1 * std::log(1.0 / p.freq_scale);
        }
        const size_t base = size_t(t) * l.token_stride + size_t(h) * l.head_stride;
        const size_t a = base + (p.neox ? i : 2 * i), b = a + (p.neox ? p.dim / 2 : 1);
        const double xa = x[a], xb = x[b];
        x[a] = float((xa * std::cos(theta) - xb * std::sin(theta)) * mscale);
        x[b] = float((xa * std::sin(theta) + xb * std::cos(theta)) * mscale);
      }
}

void check(const RopeParams& params, uint32_t rot_offset) {
  TANDEM_GPU_OR_SKIP(dev);
  // deepseek2 q: per head 128 no-rope dims then 64 rope dims; rotate the rope slice of 4 heads.
  const uint32_t n_tokens = 5, n_heads = 4, head_dim = rot_offset + params.dim;
  RopeLayout layout{n_tokens, n_heads, n_heads * head_dim, head_dim};
  const auto x = testing::random_floats(size_t(n_tokens) * n_heads * head_dim, 9);
  const std::vector<int32_t> pos{0, 1, 17, 300, 4000};
  auto xb = testing::upload_floats(dev, x, "x");
  auto pb = dev.allocate(pos.size() * 4, "pos");
  dev.upload(pb.span(), pos.data(), pos.size() * 4);
  CommandSequence seq(dev);
  record_rope(seq, xb.sub(rot_offset * 4, xb.size() - rot_offset * 4), pb.span(), layout, params);
  seq.run();
  std::vector<float> want(x.begin() + rot_offset, x.end());
  rope_reference(want, pos, layout, params);
  const std::vector<float> all = testing::download_floats(dev, xb, x.size());
  std::vector<float> got(all.begin() + rot_offset, all.end());
  for (size_t i = 0; i < want.size(); ++i)  // only the rope slices are compared here
    if ((i % head_dim) >= params.dim) got[i] = want[i];
  // float theta at position 4000 carries ~1e-4 rad of rounding.
  EXPECT_LT(testing::relative_error(got, want), 5e-4);
  for (uint32_t t = 0; t < n_tokens; ++t)  // the no-rope part of each head is untouched
    for (uint32_t h = 0; h < n_heads; ++h)
      for (uint32_t i = 0; i < rot_offset; ++i) {
        const size_t at = size_t(t) * n_heads * head_dim + size_t(h) * head_dim + i;
        ASSERT_EQ(all[at], x[at]) << "token " << t << " head " << h << " dim " << i;
      }
}

TEST(GpuRope, NormalPairs) { check({64, 10000.0f}, 128); }

TEST(GpuRope, NeoxPairs) {
  RopeParams p{64, 10000.0f};
  p.neox = true;
  check(p, 0);
}

TEST(GpuRope, YarnScaling) {
  // DeepSeek-V2-Lite style: factor 40 over 4096 original positions.
  RopeParams p{64, 10000.0f, 1.0f / 40.0f, 1.0f, 1.0f, 32.0f, 1.0f, 4096};
  float lo, hi;
  yarn_corr_dims(p, lo, hi);
  EXPECT_LT(lo, hi);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 63.0f);
  check(p, 128);
}

}  // namespace
}  // namespace tandem::gpu
