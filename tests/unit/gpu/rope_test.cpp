// RoPE (normal and NeoX pairing, with and without YaRN) against a double-precision CPU version of
// the same definition; the fused kv_a norm + rope + cache store against the separate kernels.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/gpu/latent_kv_cache.h"
#include "runtime/gpu/rope.h"
#include "runtime/gpu/row_ops.h"
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

// kv_norm_rope_store must leave the same cache rows and rotated q as rms_norm + rope(k) +
// rope(q) + kv_store, at strided inputs, scattered positions and YaRN on.
class KvNormRopeStore : public ::testing::TestWithParam<KvCacheType> {};

TEST_P(KvNormRopeStore, MatchesTheSeparateKernels) {
  TANDEM_GPU_OR_SKIP(dev);
  const uint32_t L = 64, R = 16, n = 4, n_heads = 3, nope = 8, qhd = nope + R, kv_stride = L + R + 3, rows = 12;
  const float eps = 1e-6f;
  RopeParams rp{R, 10000.0f, 1.0f / 40.0f, 1.0f, 0.8f, 32.0f, 1.0f, 4096};
  const auto kv = testing::random_floats(size_t(n) * kv_stride, 21, -2, 2), norm = testing::random_floats(L, 22);
  const auto q = testing::random_floats(size_t(n) * n_heads * qhd, 23);
  const std::vector<int32_t> pos{0, 5, 2, 9};
  auto kvb = testing::upload_floats(dev, kv, "kv"), wb = testing::upload_floats(dev, norm, "norm");
  auto q_sep = testing::upload_floats(dev, q, "q separate"), q_fused = testing::upload_floats(dev, q, "q fused");
  auto ckv = dev.allocate(size_t(n) * L * 4, "c_kv normed");
  auto pb = dev.allocate(pos.size() * 4, "pos");
  dev.upload(pb.span(), pos.data(), pos.size() * 4);
  LatentKvCache separate(dev, 2, rows, L, R, GetParam()), fused(dev, 2, rows, L, R, GetParam());
  const RopeLayout q_layout{n, n_heads, n_heads * qhd, qhd};
  auto q_rope = [&](GpuBuffer& b) { return b.sub(nope * 4, b.size() - nope * 4); };
  {
    CommandSequence seq(dev);
    record_rms_norm(seq, kvb.span(), wb.span(), ckv.span(), {L, n, kv_stride, L}, eps);
    const GpuSpan kpe = kvb.sub(L * 4, kvb.size() - L * 4);
    record_rope(seq, kpe, pb.span(), {n, 1, kv_stride, 0}, rp);
    record_rope(seq, q_rope(q_sep), pb.span(), q_layout, rp);
    record_kv_store(seq, separate, 1, ckv.span(), L, kpe, kv_stride, pb.span(), n);
    seq.run();
  }
  dev.upload(kvb.span(), kv.data(), kv.size() * 4);  // the separate rope rotated k_pe in place
  CommandSequence seq(dev);
  record_kv_norm_rope_store(seq, fused, 1, kvb.span(), kv_stride, wb.span(), eps, q_rope(q_fused), q_layout, pb.span(),
                            n, rp);
  seq.run();
  EXPECT_EQ(seq.dispatch_count(), 1u);
  const auto want_q = testing::download_floats(dev, q_sep, q.size()), got_q = testing::download_floats(dev, q_fused, q.size());
  EXPECT_LT(testing::relative_error(got_q, want_q), 1e-6);
  EXPECT_NE(got_q, q);  // something was rotated
  const uint32_t halves = rows * (L + R);
  std::vector<uint16_t> want(halves), got(halves);
  dev.download(separate.layer(1), want.data(), halves * 2);
  dev.download(fused.layer(1), got.data(), halves * 2);
  for (uint32_t i = 0; i < halves; ++i)  // one unit in the last place at most (float op order)
    ASSERT_LE(std::abs(int(got[i]) - int(want[i])), 1) << "row " << i / (L + R) << " element " << i % (L + R);
  size_t written = 0;
  for (uint16_t v : got) written += v != 0;
  EXPECT_GT(written, size_t(n) * (L + R) * 9 / 10);
  std::vector<uint16_t> other(halves);
  dev.download(fused.layer(0), other.data(), halves * 2);
  EXPECT_EQ(other, std::vector<uint16_t>(halves, 0));  // only the named layer is written
}

TEST_P(KvNormRopeStore, RejectsNeoxAndMismatchedRopeDim) {
  TANDEM_GPU_OR_SKIP(dev);
  LatentKvCache cache(dev, 1, 4, 8, 4, GetParam());
  auto kv = dev.allocate(12 * 4, "kv"), w = dev.allocate(8 * 4, "w"), q = dev.allocate(8 * 4, "q"),
       pb = dev.allocate(4, "pos");
  CommandSequence seq(dev);
  RopeParams rp{4, 10000.0f};
  rp.neox = true;
  EXPECT_THROW(record_kv_norm_rope_store(seq, cache, 0, kv.span(), 12, w.span(), 1e-6f, q.span(), {1, 1, 8, 8},
                                         pb.span(), 1, rp),
               Error);
  RopeParams wrong{8, 10000.0f};
  EXPECT_THROW(record_kv_norm_rope_store(seq, cache, 0, kv.span(), 12, w.span(), 1e-6f, q.span(), {1, 1, 8, 8},
                                         pb.span(), 1, wrong),
               Error);
}

INSTANTIATE_TEST_SUITE_P(Types, KvNormRopeStore, ::testing::Values(KvCacheType::F16, KvCacheType::BF16),
                         [](const auto& info) { return info.param == KvCacheType::F16 ? "F16" : "BF16"; });

}  // namespace
}  // namespace tandem::gpu
