// MoeEngine::forward against the single-expert references, on every ISA this CPU runs, with the
// routing edge cases: odd token counts, idle experts, every token on one expert, token counts
// past the token block, row counts that are not multiples of the row tiles, several pools.
#include <gtest/gtest.h>

#include "experts/moe_engine.h"
#include "runtime/core/error.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem {
namespace {

using experts::CpuIsa;

struct Routing {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Routing random_routing(int64_t n_tokens, int k_used, int64_t n_experts, std::mt19937& rng) {
  Routing r;
  std::uniform_int_distribution<int32_t> pick(0, int32_t(n_experts - 1));
  std::uniform_real_distribution<float> w(0.1f, 1.0f);
  for (int64_t t = 0; t < n_tokens * k_used; ++t) r.ids.push_back(pick(rng)), r.weights.push_back(w(rng));
  return r;
}

// y from a per-(token, slot) reference expert function.
template <typename ExpertFn>
std::vector<float> reference(const MoeLayerWeights& w, const std::vector<float>& x, int64_t n_tokens,
                             const Routing& r, int k_used, ExpertFn expert) {
  std::vector<float> y(size_t(n_tokens * w.hidden), 0.0f), out(size_t(w.hidden));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int k = 0; k < k_used; ++k) {
      expert(w, r.ids[size_t(t * k_used + k)], x.data() + t * w.hidden, out.data());
      for (int64_t i = 0; i < w.hidden; ++i) y[size_t(t * w.hidden + i)] += r.weights[size_t(t * k_used + k)] * out[size_t(i)];
    }
  return y;
}

struct LayerCase {
  GgmlType gate_up, down;
  int64_t hidden, ffn;
};

// Two 8-bit activation quantizations (x and the SiLU product) in series.
constexpr double kEngineNmse = 1e-3;

void check_engine(MoeEngine& engine, const test::RandomLayer& L, int64_t n_tokens, int k_used, const Routing& r,
                  std::mt19937& rng, const char* what) {
  const MoeLayerWeights& w = L.weights;
  const int layer = engine.add_layer(w);
  const auto x = test::random_floats(size_t(n_tokens * w.hidden), rng, 1.0f);
  std::vector<float> y(size_t(n_tokens * w.hidden), 12345.0f);  // must be overwritten
  engine.forward(layer, x.data(), n_tokens, r.ids.data(), r.weights.data(), k_used, y.data());
  const auto want = reference(w, x, n_tokens, r, k_used, run_expert_f32);
  const auto same_math = reference(w, x, n_tokens, r, k_used, run_expert_scalar);
  EXPECT_LT(test::nmse(y, want), kEngineNmse) << what;
  EXPECT_LT(test::nmse(y, same_math), 1e-9) << what << ": engine differs from the scalar expert path";
}

class EngineTest : public testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override {
    if (!experts::cpu_supports(GetParam())) GTEST_SKIP() << "CPU lacks " << experts::cpu_isa_name(GetParam());
  }
  MoeEngine make_engine() {
    MoeEngineOptions o;
    o.isa = GetParam();
    o.threads_per_node = 2;
    o.pin_threads = false;
    o.max_nodes = 1;
    return MoeEngine(o);
  }
};

TEST_P(EngineTest, TypesAndShapes) {
  const LayerCase cases[] = {
      {GgmlType::Q4_K, GgmlType::Q6_K, 256, 256},  {GgmlType::Q5_K, GgmlType::Q5_K, 256, 256},
      {GgmlType::Q8_0, GgmlType::Q8_0, 256, 96},   {GgmlType::Q4_K, GgmlType::Q8_0, 256, 160},  // 160 % 256 != 0
      {GgmlType::Q4_0, GgmlType::Q5_0, 64, 96},    {GgmlType::Q4_1, GgmlType::Q5_1, 96, 64},
      {GgmlType::Q2_K, GgmlType::Q3_K, 256, 256},  {GgmlType::BF16, GgmlType::F16, 40, 37},  // odd row counts
      {GgmlType::IQ4_XS, GgmlType::IQ4_NL, 256, 96},
  };
  std::mt19937 rng(99);
  for (const auto& c : cases) {
    MoeEngine engine = make_engine();
    const auto& L = test::cached_layer(c.gate_up, c.down, 5, c.hidden, c.ffn, 17);
    for (int64_t n_tokens : {1, 3, 8}) {
      const Routing r = random_routing(n_tokens, 2, 5, rng);
      const std::string what = std::string(ggml_type_name(c.gate_up)) + "/" + std::string(ggml_type_name(c.down)) +
                               " tokens=" + std::to_string(n_tokens);
      check_engine(engine, L, n_tokens, 2, r, rng, what.c_str());
    }
  }
}

TEST_P(EngineTest, RoutingEdgeCases) {
  std::mt19937 rng(5);
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q8_0, 8, 256, 96, 3);
  MoeEngine engine = make_engine();
  {  // every token on expert 6 (all others idle), two slots to the same expert
    Routing r;
    for (int t = 0; t < 5 * 2; ++t) r.ids.push_back(6), r.weights.push_back(0.25f * float(t % 3 + 1));
    check_engine(engine, L, 5, 2, r, rng, "all tokens on one expert");
  }
  check_engine(engine, L, 45, 3, random_routing(45, 3, 8, rng), rng, "45 tokens (past one token block)");
  check_engine(engine, L, 7, 1, random_routing(7, 1, 8, rng), rng, "k_used=1");
  {
    std::vector<float> y(256, 1.0f);
    const std::vector<float> x(256, 0.5f);
    const int layer = engine.add_layer(L.weights);
    engine.forward(layer, x.data(), 1, nullptr, nullptr, 0, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f) << "no expert: y must be zeroed";
    engine.forward(layer, x.data(), 0, nullptr, nullptr, 2, y.data());  // no tokens: no work, no crash
  }
}

TEST_P(EngineTest, RejectsBadInput) {
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q4_K, 4, 256, 256, 1);
  MoeEngine engine = make_engine();
  const int layer = engine.add_layer(L.weights);
  std::vector<float> x(256), y(256);
  const int32_t ids[] = {1, 4};
  const float weights[] = {0.5f, 0.5f};
  try {
    engine.forward(layer, x.data(), 1, ids, weights, 2, y.data());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expert id 4"), std::string::npos) << e.what();
  }
  MoeLayerWeights bad = L.weights;
  bad.ffn = 160;  // Q4_K down rows must be multiples of 256
  EXPECT_THROW(engine.add_layer(bad), Error);
  bad = L.weights;
  bad.down_type = GgmlType::MXFP4;
  EXPECT_THROW(engine.add_layer(bad), Error);
}

// A per-layer expert mask: the engine computes only the experts it owns (the others live on a
// GPU), so a masked engine plus one with the complement mask give the unmasked result.
TEST_P(EngineTest, ExpertMaskComputesOwnedExpertsOnly) {
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q6_K, 8, 256, 256, 13);
  std::mt19937 rng(31);
  const std::vector<uint8_t> mask = {1, 0, 0, 1, 1, 0, 1, 0};
  std::vector<uint8_t> complement(mask.size());
  for (size_t e = 0; e < mask.size(); ++e) complement[e] = !mask[e];
  for (int64_t n_tokens : {1, 35}) {  // decode; past one token block
    const Routing r = random_routing(n_tokens, 3, 8, rng);
    const auto x = test::random_floats(size_t(n_tokens * 256), rng, 1.0f);
    auto run = [&](const std::vector<uint8_t>& owned) {
      MoeEngine engine = make_engine();
      const int layer = engine.add_layer(L.weights, owned);
      std::vector<float> y(size_t(n_tokens * 256), 777.0f);  // must be overwritten
      engine.forward(layer, x.data(), n_tokens, r.ids.data(), r.weights.data(), 3, y.data());
      return y;
    };
    // The reference over owned experts: the same routing with the others' weights at zero.
    auto only = [&](const std::vector<uint8_t>& owned) {
      Routing masked = r;
      for (size_t i = 0; i < masked.ids.size(); ++i)
        if (!owned[size_t(masked.ids[i])]) masked.weights[i] = 0.0f;
      return reference(L.weights, x, n_tokens, masked, 3, run_expert_scalar);
    };
    const auto full = run({}), part = run(mask), rest = run(complement);
    EXPECT_LT(test::nmse(part, only(mask)), 1e-9) << n_tokens << " tokens";
    EXPECT_LT(test::nmse(rest, only(complement)), 1e-9) << n_tokens << " tokens";
    std::vector<float> sum(full.size());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = part[i] + rest[i];
    EXPECT_LT(test::nmse(sum, full), 1e-10) << n_tokens << " tokens";
    EXPECT_EQ(full, run(std::vector<uint8_t>(8, 1))) << "an all-true mask is the default";
    const auto none = run(std::vector<uint8_t>(8, 0));
    for (float v : none) ASSERT_EQ(v, 0.0f) << "no owned expert: y is zero";
  }
}

TEST_P(EngineTest, ExpertMaskChecksItsLength) {
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q6_K, 8, 256, 256, 13);
  MoeEngine engine = make_engine();
  EXPECT_THROW(engine.add_layer(L.weights, std::vector<uint8_t>(7, 1)), Error);
  const int layer = engine.add_layer(L.weights, {0, 1, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(engine.owned_experts(layer), 2);
  EXPECT_EQ(engine.expert_pool(layer, 0), MoeEngine::kNotOwned);
  EXPECT_EQ(engine.expert_pool(layer, 1), 0);
}

INSTANTIATE_TEST_SUITE_P(Isas, EngineTest, testing::Values(CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512),
                         [](const auto& info) { return std::string(experts::cpu_isa_name(info.param)); });

// Several NUMA pools planned on a synthetic topology (threads unpinned): sharded and replicated
// experts give the single-pool result, and every expert has the owner the sharding rule says.
TEST(EngineNuma, ShardedAndReplicatedPoolsAgree) {
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q6_K, 8, 256, 256, 11);
  std::mt19937 rng(21);
  const int64_t n_tokens = 6;
  const Routing r = random_routing(n_tokens, 3, 8, rng);
  const auto x = test::random_floats(size_t(n_tokens * 256), rng, 1.0f);
  auto run = [&](const MoeEngineOptions& o, MoeEngine** keep = nullptr) {
    MoeEngine engine(o);
    const int layer = engine.add_layer(L.weights);
    std::vector<float> y(size_t(n_tokens * 256));
    engine.forward(layer, x.data(), n_tokens, r.ids.data(), r.weights.data(), 3, y.data());
    if (o.max_nodes != 1) {
      EXPECT_EQ(engine.n_nodes(), 4);
      for (int64_t e = 0; e < 8; ++e) EXPECT_EQ(engine.expert_pool(layer, e), o.replicate_experts ? -1 : int(e / 2));
    }
    return y;
  };
  MoeEngineOptions one;
  one.max_nodes = 1, one.threads_per_node = 2, one.pin_threads = false;
  MoeEngineOptions sharded;
  sharded.synthetic_topology = "package:2 numa:2 core:2 pu:2";
  sharded.threads_per_node = 1;
  MoeEngineOptions replicated = sharded;
  replicated.replicate_experts = true;
  const auto base = run(one);
  EXPECT_LT(test::nmse(run(sharded), base), 1e-10);
  EXPECT_LT(test::nmse(run(replicated), base), 1e-10);
  EXPECT_LT(test::nmse(base, reference(L.weights, x, n_tokens, r, 3, run_expert_f32)), kEngineNmse);
}

// Masked experts take no memory: the repacked layout and node copies cover owned experts only,
// and owned experts are sharded over the pools among themselves.
TEST(EngineMask, UnownedExpertsGetNoMemoryAndShardingCoversOwnedOnes) {
  if (!experts::cpu_supports(CpuIsa::Avx512)) GTEST_SKIP() << "the repacked layout needs avx512";
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q6_K, 8, 256, 256, 11);
  MoeEngineOptions o;
  o.isa = CpuIsa::Avx512;
  o.repack_for_prefill = true;
  o.synthetic_topology = "package:2 numa:2 core:2 pu:2";
  o.threads_per_node = 1;
  MoeEngine engine(o);
  const int full = engine.add_layer(L.weights);
  const std::vector<uint8_t> mask = {0, 0, 1, 1, 1, 1, 0, 0};
  const int masked = engine.add_layer(L.weights, mask);
  ASSERT_GT(engine.repacked_bytes(full), 0);
  EXPECT_EQ(engine.repacked_bytes(masked) * 2, engine.repacked_bytes(full));
  EXPECT_EQ(engine.owned_experts(masked), 4);
  const int want[] = {-2, -2, 0, 1, 2, 3, -2, -2};  // 4 owned experts over 4 pools
  for (int64_t e = 0; e < 8; ++e) EXPECT_EQ(engine.expert_pool(masked, e), want[e]) << "expert " << e;
  // Sharded pools with a mask still give the masked single-pool result.
  std::mt19937 rng(3);
  const Routing r = random_routing(6, 3, 8, rng);
  const auto x = test::random_floats(size_t(6 * 256), rng, 1.0f);
  std::vector<float> y(6 * 256), y1(6 * 256);
  engine.forward(masked, x.data(), 6, r.ids.data(), r.weights.data(), 3, y.data());
  MoeEngineOptions one;
  one.max_nodes = 1, one.threads_per_node = 2, one.pin_threads = false, one.isa = CpuIsa::Avx512;
  MoeEngine single(one);
  single.forward(single.add_layer(L.weights, mask), x.data(), 6, r.ids.data(), r.weights.data(), 3, y1.data());
  EXPECT_LT(test::nmse(y, y1), 1e-10);
}

}  // namespace
}  // namespace tandem
