// Absorbed MLA on the GPU against the plain (non-absorbed) CPU definition: keys and values are
// decompressed from the latent cache per head, then ordinary causal softmax attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <numeric>
#include <tuple>

#include "runtime/core/half.h"
#include "runtime/gpu/mla_attention.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

struct MlaCase {
  MlaShape shape;
  uint32_t n_ctx;     // cache rows written
  uint32_t n_query;   // queries, at the last n_query positions
  uint32_t chunk = 64;  // queries per prefill chunk
  MlaKernel kernel = MlaKernel::Auto;
};

std::vector<float> reference(const MlaShape& s, const std::vector<float>& kb, const std::vector<float>& vb,
                             const std::vector<float>& ckv, const std::vector<float>& kpe,
                             const std::vector<float>& q, const std::vector<int32_t>& pos, float scale) {
  const uint32_t L = s.kv_lora_rank, R = s.qk_rope_dim, N = s.qk_nope_dim, V = s.v_head_dim, qk = N + R;
  std::vector<float> out(pos.size() * s.n_head * V);
  for (size_t t = 0; t < pos.size(); ++t)
    for (uint32_t h = 0; h < s.n_head; ++h) {
      const float* qh = &q[(t * s.n_head + h) * qk];
      std::vector<double> score(size_t(pos[t]) + 1);
      for (int32_t j = 0; j <= pos[t]; ++j) {
        double d = 0;
        for (uint32_t n = 0; n < N; ++n) {  // k_nope[j][h][n] = sum_l k_b[h][l][n] c_kv[j][l]
          double k = 0;
          for (uint32_t l = 0; l < L; ++l) k += double(kb[(size_t(h) * L + l) * N + n]) * ckv[size_t(j) * L + l];
          d += qh[n] * k;
        }
        for (uint32_t r = 0; r < R; ++r) d += double(qh[N + r]) * kpe[size_t(j) * R + r];
        score[j] = d * scale;
      }
      const double m = *std::max_element(score.begin(), score.end());
      double z = 0;
      for (auto& v : score) z += v = std::exp(v - m);
      for (uint32_t e = 0; e < V; ++e) {
        double o = 0;
        for (int32_t j = 0; j <= pos[t]; ++j) {  // v[j][h][e] = sum_l v_b[h][e][l] c_kv[j][l]
          double v = 0;
          for (uint32_t l = 0; l < L; ++l) v += double(vb[(size_t(h) * V + e) * L + l]) * ckv[size_t(j) * L + l];
          o += score[j] / z * v;
        }
        out[(t * s.n_head + h) * V + e] = float(o);
      }
    }
  return out;
}

// The values the cache holds: inputs rounded to its element type.
std::vector<float> round_to(KvCacheType type, std::vector<float> v) {
  for (auto& x : v) x = type == KvCacheType::BF16 ? bf16_to_f32(f32_to_bf16(x)) : f16_to_f32(f32_to_f16(x));
  return v;
}

class MlaAttentionTest : public ::testing::TestWithParam<std::tuple<MlaCase, KvCacheType>> {};

TEST_P(MlaAttentionTest, MatchesDecompressedAttention) {
  TANDEM_GPU_OR_SKIP(dev);
  const auto [c, type] = GetParam();
  const auto [s, n_ctx, n_query, chunk, kernel] = c;
  const uint32_t L = s.kv_lora_rank, R = s.qk_rope_dim, qk = s.qk_nope_dim + R;
  // The grouped kernel is what runs (here and on real GPUs) for every shape of the size it takes:
  // a device without its 28 KiB of shared memory would silently test only the fallback.
  EXPECT_EQ(mla_grouped_supported(dev.info(), s), L + R <= 576)
      << "shared memory " << dev.info().max_compute_shared_memory;
  const auto kb = testing::random_floats(size_t(s.n_head) * L * s.qk_nope_dim, 1, -0.3f, 0.3f);
  const auto vb = testing::random_floats(size_t(s.n_head) * s.v_head_dim * L, 2, -0.3f, 0.3f);
  const auto ckv = testing::random_floats(size_t(n_ctx) * L, 3);
  const auto kpe = testing::random_floats(size_t(n_ctx) * R, 4);
  const auto q = testing::random_floats(size_t(n_query) * s.n_head * qk, 5);
  std::vector<int32_t> cache_pos(n_ctx), qpos(n_query);
  std::iota(cache_pos.begin(), cache_pos.end(), 0);
  std::iota(qpos.begin(), qpos.end(), int32_t(n_ctx - n_query));
  const float scale = 1.0f / std::sqrt(float(qk));

  GpuBuffer kbs, vbs;
  MlaWeights w{upload_weight(dev, kbs, GgmlType::F32, s.n_head * L, s.qk_nope_dim, kb.data(), "attn_k_b"),
               upload_weight(dev, vbs, GgmlType::F32, s.n_head * s.v_head_dim, L, vb.data(), "attn_v_b")};
  LatentKvCache cache(dev, 2, n_ctx + 8, L, R, type);
  auto ckv_b = testing::upload_floats(dev, ckv, "c_kv"), kpe_b = testing::upload_floats(dev, kpe, "k_pe");
  auto qb = testing::upload_floats(dev, q, "q");
  auto cpb = dev.allocate(n_ctx * 4, "cache positions"), qpb = dev.allocate(n_query * 4, "query positions");
  dev.upload(cpb.span(), cache_pos.data(), n_ctx * 4);
  dev.upload(qpb.span(), qpos.data(), n_query * 4);
  const uint64_t scratch = mla_scratch_floats(s, n_query, chunk) * 4;
  EXPECT_EQ(scratch, uint64_t(std::min(n_query, chunk)) * s.n_head * L * 4);
  auto q_lat = dev.allocate(scratch, "q_lat"), o_lat = dev.allocate(scratch, "o_lat");
  auto out = dev.allocate(size_t(n_query) * s.n_head * s.v_head_dim * 4, "out");

  CommandSequence seq(dev);
  record_kv_store(seq, cache, 1, ckv_b.span(), L, kpe_b.span(), R, cpb.span(), n_ctx);
  record_mla_attention(seq, s, w, qb.span(), cache, 1, qpb.span(), n_query, scale, q_lat.span(), o_lat.span(),
                       out.span(), chunk, kernel);
  seq.run();

  // Against the cache's own rounding the kernel is exact up to F32 accumulation, for either type
  // (so a kernel reading the wrong type fails: F16 and BF16 roundings differ by ~1e-3).
  const auto want = reference(s, kb, vb, round_to(type, ckv), round_to(type, kpe), q, qpos, scale);
  const auto got = testing::download_floats(dev, out, want.size());
  EXPECT_LT(testing::relative_error(got, want), 1e-4);
  // Against unrounded keys: the storage error. Measured worst over these cases (lavapipe): F16 2.9e-4,
  // BF16 2.3e-3 (8-bit mantissa, 8x F16's step); bounds at about 4x that.
  const auto exact = reference(s, kb, vb, ckv, kpe, q, qpos, scale);
  const double storage_error = testing::relative_error(got, exact);
  RecordProperty("storage_error", std::to_string(storage_error));
  EXPECT_LT(storage_error, type == KvCacheType::BF16 ? 1e-2 : 2e-3);
}

// Shapes {n_head, kv_lora_rank, qk_nope, rope, v_head}. The grouped kernel takes 8 (query, head)
// rows per workgroup and 16 keys per tile: head counts that 8 does not divide put rows of
// several queries (with different causal limits) into one group; contexts around 64 end tiles
// and slices early; long contexts are split into slices merged by mla_combine.
constexpr MlaKernel kPerHead = MlaKernel::PerHead;
INSTANTIATE_TEST_SUITE_P(
    Shapes, MlaAttentionTest,
    ::testing::Combine(::testing::Values(MlaCase{{4, 64, 32, 16, 32}, 5, 1},      // decode, one key tile
                      MlaCase{{3, 64, 32, 16, 48}, 150, 1},    // decode across several key tiles
                      MlaCase{{1, 64, 32, 16, 32}, 1000, 2},   // split context: slices of several tiles
                      MlaCase{{2, 64, 32, 16, 32}, 150, 150},  // prefill: every query causal, 3 chunks
                      MlaCase{{2, 64, 32, 16, 32}, 40, 37, 5},  // prefill in chunks of 5 (last one short)
                      MlaCase{{2, 512, 128, 64, 128}, 70, 3},  // DeepSeek head dimensions
                      MlaCase{{1, 64, 32, 16, 32}, 1, 1},      // a single key
                      MlaCase{{16, 64, 16, 16, 16}, 63, 1},    // tile ends: 63 / 64 / 65 keys
                      MlaCase{{16, 64, 16, 16, 16}, 64, 1},
                      MlaCase{{16, 64, 16, 16, 16}, 65, 1},
                      MlaCase{{16, 64, 16, 16, 16}, 1000, 1},  // split over 16 head rows
                      MlaCase{{128, 64, 16, 16, 16}, 65, 1},   // 16 groups of heads
                      MlaCase{{3, 64, 32, 16, 32}, 40, 37, 5},  // groups span queries at chunk boundaries
                      MlaCase{{5, 128, 32, 16, 32}, 100, 20, 7},  // queries at positions 80..99
                      MlaCase{{12, 64, 16, 8, 16}, 300, 3},    // groups span queries, split context
                      MlaCase{{2, 600, 16, 8, 16}, 70, 2},     // rank + rope > 576: per-head fallback
                      MlaCase{{3, 64, 32, 16, 48}, 150, 1, 64, kPerHead},
                      MlaCase{{2, 64, 32, 16, 32}, 40, 37, 5, kPerHead}),
                       ::testing::Values(KvCacheType::F16, KvCacheType::BF16)),
    [](const ::testing::TestParamInfo<std::tuple<MlaCase, KvCacheType>>& i) {
      const auto& c = std::get<0>(i.param);
      return "h" + std::to_string(c.shape.n_head) + "_L" + std::to_string(c.shape.kv_lora_rank) + "_R" +
             std::to_string(c.shape.qk_rope_dim) + "_ctx" + std::to_string(c.n_ctx) + "_q" +
             std::to_string(c.n_query) + "_chunk" + std::to_string(c.chunk) +
             (c.kernel == MlaKernel::PerHead ? "_perhead_" : "_") + kv_cache_type_name(std::get<1>(i.param));
    });

class LatentKvCacheStore : public ::testing::TestWithParam<KvCacheType> {};

TEST_P(LatentKvCacheStore, StoresRowsAtPositionsRoundedToType) {
  TANDEM_GPU_OR_SKIP(dev);
  const KvCacheType type = GetParam();
  const uint32_t L = 8, R = 4;
  LatentKvCache cache(dev, 3, 10, L, R, type);
  EXPECT_EQ(cache.type(), type);
  auto ckv = testing::random_floats(2 * 11, 7), kpe = testing::random_floats(2 * 5, 8);
  if (type == KvCacheType::BF16) {  // rounding corners: ties to even (down and up), carry into the exponent, NaN
    const uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0x3f7fffffu, 0x7fc00001u, 0xbf80c000u, 0x00008000u};
    for (size_t i = 0; i < std::size(bits); ++i) std::memcpy(&ckv[i], &bits[i], 4);
  }
  const auto stored = [type](float x) { return type == KvCacheType::BF16 ? f32_to_bf16(x) : f32_to_f16(x); };
  const std::vector<int32_t> pos{6, 2};
  auto cb = testing::upload_floats(dev, ckv, "ckv"), kb = testing::upload_floats(dev, kpe, "kpe");
  auto pb = dev.allocate(8, "pos");
  dev.upload(pb.span(), pos.data(), 8);
  CommandSequence seq(dev);
  record_kv_store(seq, cache, 2, cb.span(), 11, kb.span(), 5, pb.span(), 2);  // strided inputs
  seq.run();
  std::vector<uint16_t> rows(10 * (L + R));
  dev.download(cache.layer(2), rows.data(), rows.size() * 2);
  for (uint32_t t = 0; t < 2; ++t) {
    const uint16_t* row = &rows[size_t(pos[t]) * (L + R)];
    for (uint32_t l = 0; l < L; ++l) EXPECT_EQ(row[l], stored(ckv[t * 11 + l])) << "token " << t << " c_kv " << l;
    for (uint32_t r = 0; r < R; ++r) EXPECT_EQ(row[L + r], stored(kpe[t * 5 + r])) << "token " << t << " k_pe " << r;
  }
  EXPECT_EQ(rows[0], 0u);  // untouched rows stay zero
  std::vector<uint16_t> other(10 * (L + R));
  dev.download(cache.layer(1), other.data(), other.size() * 2);
  EXPECT_EQ(std::count(other.begin(), other.end(), 0), long(other.size()));  // other layers untouched
  EXPECT_THROW(cache.layer(3), Error);
}

INSTANTIATE_TEST_SUITE_P(Types, LatentKvCacheStore, ::testing::Values(KvCacheType::F16, KvCacheType::BF16),
                         [](const ::testing::TestParamInfo<KvCacheType>& i) { return kv_cache_type_name(i.param); });

TEST(KvCacheType, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_kv_cache_type("f16"), KvCacheType::F16);
  EXPECT_EQ(parse_kv_cache_type("bf16"), KvCacheType::BF16);
  EXPECT_THROW(parse_kv_cache_type("f32"), Error);
  EXPECT_THROW(parse_kv_cache_type("q8_0"), Error);
}

}  // namespace
}  // namespace tandem::gpu
