// GPU-resident routed experts (moe_experts.h) against an fp32 CPU reference on the same
// dequantized weights: every weight type the GPU matmul reads, decode and prompt token counts,
// ids that point at CPU experts (skipped), chunked slot storage, and replays of one recording
// with new ids (the ids are not known when the sequence is recorded).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "runtime/gpu/moe_experts.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

struct ExpertLayerCase {
  GpuExpertsShape shape;
  std::vector<uint8_t> gate, up, down;  // n_expert matrices back to back, as GGUF stores them
  std::vector<float> gate_f, up_f, down_f;
};

ExpertLayerCase make_layer(const GpuExpertsShape& shape, uint32_t seed) {
  ExpertLayerCase c;
  c.shape = shape;
  const uint32_t E = shape.n_expert;
  c.gate = testing::make_weights(shape.gate_up_type, E * shape.ffn, shape.hidden, c.gate_f, seed);
  c.up = testing::make_weights(shape.gate_up_type, E * shape.ffn, shape.hidden, c.up_f, seed + 1);
  c.down = testing::make_weights(shape.down_type, E * shape.hidden, shape.ffn, c.down_f, seed + 2);
  return c;
}

// out[t] += sum over resident k of w * down(silu(gate x) * up x), in double.
std::vector<float> reference(const ExpertLayerCase& c, const std::vector<uint8_t>& resident,
                             const std::vector<float>& x, const std::vector<int32_t>& ids,
                             const std::vector<float>& weights, uint32_t n_tokens, uint32_t k_used,
                             std::vector<float> out) {
  const uint32_t H = c.shape.hidden, F = c.shape.ffn;
  std::vector<double> h(F);
  for (uint32_t t = 0; t < n_tokens; ++t)
    for (uint32_t k = 0; k < k_used; ++k) {
      const int32_t e = ids[t * k_used + k];
      if (e < 0 || uint32_t(e) >= c.shape.n_expert || !resident[size_t(e)]) continue;
      for (uint32_t r = 0; r < F; ++r) {
        double g = 0, u = 0;
        const size_t row = (size_t(e) * F + r) * H;
        for (uint32_t i = 0; i < H; ++i) {
          g += double(c.gate_f[row + i]) * x[size_t(t) * H + i];
          u += double(c.up_f[row + i]) * x[size_t(t) * H + i];
        }
        h[r] = g / (1 + std::exp(-g)) * u;
      }
      for (uint32_t r = 0; r < H; ++r) {
        double d = 0;
        const size_t row = (size_t(e) * H + r) * F;
        for (uint32_t i = 0; i < F; ++i) d += double(c.down_f[row + i]) * h[i];
        out[size_t(t) * H + r] += float(weights[t * k_used + k] * d);
      }
    }
  return out;
}

GpuExpertLayer upload_layer(GpuDevice& dev, const ExpertLayerCase& c, const std::vector<uint8_t>& resident,
                            uint64_t max_binding = 0) {
  GpuExpertLayer layer(dev, c.shape, resident, max_binding);
  const uint64_t gu = ggml_row_bytes(c.shape.gate_up_type, c.shape.hidden) * c.shape.ffn;
  const uint64_t d = ggml_row_bytes(c.shape.down_type, c.shape.ffn) * c.shape.hidden;
  for (uint32_t e = 0; e < c.shape.n_expert; ++e)
    if (resident[e]) layer.upload_expert(e, c.gate.data() + e * gu, c.up.data() + e * gu, c.down.data() + e * d);
  return layer;
}

struct Scratch {
  GpuBuffer route, hidden, parts;
  GpuExpertScratch spans() const { return {route.span(), hidden.span(), parts.span()}; }
};
Scratch make_scratch(GpuDevice& dev, const GpuExpertsShape& s, uint32_t max_pairs) {
  const auto b = gpu_expert_scratch_bytes(s.n_expert, s.hidden, s.ffn, max_pairs);
  return {dev.allocate(b.route, "route"), dev.allocate(b.hidden, "hidden"), dev.allocate(b.parts, "parts")};
}

// Random routing with distinct experts per token (as a top-k router gives), so some pairs land
// on CPU experts; sometimes an invalid id (must be skipped, not read).
void random_routing(uint32_t n_tokens, uint32_t k_used, uint32_t n_expert, std::mt19937& rng,
                    std::vector<int32_t>& ids, std::vector<float>& weights) {
  ids.clear(), weights.clear();
  std::uniform_real_distribution<float> wd(0.1f, 1.0f);
  for (uint32_t t = 0; t < n_tokens; ++t) {
    std::vector<int32_t> order(n_expert);
    for (uint32_t e = 0; e < n_expert; ++e) order[e] = int32_t(e);
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t k = 0; k < k_used; ++k) ids.push_back(order[k]), weights.push_back(wd(rng));
  }
}

// One recorded sequence, replayed over several routings written to host-visible ids/weights.
void check_layer(GpuDevice& dev, const ExpertLayerCase& c, const std::vector<uint8_t>& resident, uint32_t n_tokens,
                 uint32_t k_used, uint64_t max_binding, const std::string& what, const GpuExpertsLayout& lay = {},
                 int32_t every_id = -1) {
  const GpuExpertsShape& s = c.shape;
  GpuExpertLayer layer = upload_layer(dev, c, resident, max_binding);
  Scratch scratch = make_scratch(dev, s, n_tokens * k_used);
  const auto x = testing::random_floats(size_t(n_tokens) * s.hidden, 5);
  const auto init = testing::random_floats(size_t(n_tokens) * s.hidden, 6);
  GpuBuffer xb = testing::upload_floats(dev, x, "x");
  GpuBuffer out = dev.allocate(init.size() * 4, "out");
  GpuBuffer ids = dev.allocate(n_tokens * k_used * 4, "ids", MemoryKind::HostVisible);
  GpuBuffer wts = dev.allocate(n_tokens * k_used * 4, "weights", MemoryKind::HostVisible);
  CommandSequence seq(dev);
  record_gpu_experts(seq, layer, xb.span(), ids.span(), wts.span(), n_tokens, k_used, out.span(), scratch.spans(), lay);
  seq.finish();
  std::mt19937 rng(n_tokens * 31 + k_used);
  for (int replay = 0; replay < 2; ++replay) {
    std::vector<int32_t> id;
    std::vector<float> w;
    random_routing(n_tokens, k_used, s.n_expert, rng, id, w);
    if (every_id >= 0) std::fill(id.begin(), id.end(), every_id);  // one expert, k times per token
    if (replay == 1) id[0] = int32_t(s.n_expert) + 3;  // out of range: contributes nothing
    std::memcpy(ids.mapped(), id.data(), id.size() * 4);
    std::memcpy(wts.mapped(), w.data(), w.size() * 4);
    dev.upload(out.span(), init.data(), init.size() * 4);
    seq.run();
    const auto got = testing::download_floats(dev, out, init.size());
    // The experts' sum, as deltas from what out held (accumulate) or from zero (overwrite).
    const std::vector<float> base = lay.accumulate ? init : std::vector<float>(init.size(), 0.0f);
    const auto want = reference(c, resident, x, id, w, n_tokens, k_used, base);
    std::vector<float> delta_got(got.size()), delta_want(got.size());
    for (size_t i = 0; i < got.size(); ++i) delta_got[i] = got[i] - base[i], delta_want[i] = want[i] - base[i];
    EXPECT_LT(testing::relative_error(delta_got, delta_want, 1e-3), 2e-4) << what << " replay " << replay;
  }
}

const std::vector<uint8_t> kResident = {1, 0, 1, 1, 0, 1};  // experts 1 and 4 stay on the CPU

GpuExpertsLayout tiled_layout() {
  GpuExpertsLayout l;
  l.kernel = GpuExpertsLayout::Kernel::Tiled;
  return l;
}
const GpuExpertsLayout kTiled = tiled_layout();

TEST(GpuMoeExperts, EveryWeightType) {
  TANDEM_GPU_OR_SKIP(dev);
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K,
                            GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                            GgmlType::IQ1_S, GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
                            GgmlType::IQ3_XXS, GgmlType::IQ3_S};
  for (GgmlType t : types) {
    // Each type once as gate/up and once as down, against Q8_0 on short rows for the other
    // matrix (the reference quantizers of the K-quants take ~1 s per 400k values). Three
    // tokens x two slots: groups of one to three pairs.
    const uint32_t K = ggml_type_info(t).block_size == 256 ? 256u : 64u;
    const auto gu = make_layer({6, K, 32, t, GgmlType::Q8_0}, 11), d = make_layer({6, 32, K, GgmlType::Q8_0, t}, 12);
    const std::string name(ggml_type_name(t));
    check_layer(dev, gu, kResident, 3, 2, 0, name + " gate/up");
    check_layer(dev, d, kResident, 3, 2, 0, name + " down");
    check_layer(dev, gu, kResident, 3, 2, 0, name + " gate/up tiled", kTiled);
    check_layer(dev, d, kResident, 3, 2, 0, name + " down tiled", kTiled);
  }
}

TEST(GpuMoeExperts, MixedTypesOddFloatRowsAndManyTokens) {
  TANDEM_GPU_OR_SKIP(dev);
  {  // Q4_K gate/up with a Q6_K down (Q4_K_M files); 21 tokens: groups wider than one pass
    const auto c = make_layer({4, 256, 256, GgmlType::Q4_K, GgmlType::Q6_K}, 3);
    check_layer(dev, c, {1, 0, 1, 1}, 21, 2, 0, "q4_k/q6_k n=21");
  }
  {  // K-quant rows of many chunks: several per thread, loaded two at a time
    check_layer(dev, make_layer({3, 2048, 32, GgmlType::Q4_K, GgmlType::Q8_0}, 5), {1, 0, 1}, 2, 2, 0, "q4_k 2048");
    check_layer(dev, make_layer({3, 32, 1280, GgmlType::Q8_0, GgmlType::Q6_K}, 6), {1, 0, 1}, 1, 3, 0, "q6_k 1280");
  }
  {  // float rows whose length is not a multiple of 4
    const auto c = make_layer({6, 38, 21, GgmlType::F16, GgmlType::BF16}, 4);
    check_layer(dev, c, kResident, 5, 2, 0, "f16/bf16 odd rows");
  }
}

// The grouped tiled GEMM for prompts (moe_experts_tiled.comp): groups of more than one 64-pair
// tile, rows not a multiple of the 64-row tile, odd float rows, more pairs per group than the
// grid has column tiles (one expert taken k times per token: the kernel loops over its tiles).
TEST(GpuMoeExperts, TiledPrompts) {
  TANDEM_GPU_OR_SKIP(dev);
  EXPECT_TRUE(gpu_experts_tiled_auto(512 * 6, 64));  // V2-Lite pp512
  EXPECT_TRUE(gpu_experts_tiled_auto(512 * 8, 256));  // V3 pp512
  EXPECT_FALSE(gpu_experts_tiled_auto(8, 256));       // decode
  {
    const auto c = make_layer({4, 256, 256, GgmlType::Q4_K, GgmlType::Q6_K}, 13);
    check_layer(dev, c, {1, 0, 1, 1}, 150, 2, 0, "q4_k/q6_k n=150 tiled", kTiled);
    check_layer(dev, c, {1, 1, 1, 1}, 70, 3, 0, "q4_k/q6_k n=70 auto");  // 210 pairs / 4 experts: tiled
  }
  {
    const auto c = make_layer({6, 38, 21, GgmlType::F16, GgmlType::BF16}, 14);
    check_layer(dev, c, kResident, 67, 2, 0, "f16/bf16 odd rows tiled", kTiled);
  }
  {
    const auto c = make_layer({6, 64, 96, GgmlType::Q8_0, GgmlType::Q5_0}, 15);
    check_layer(dev, c, kResident, 40, 4, 0, "one expert 160 times", kTiled, 2);
    GpuExpertsLayout over = kTiled;
    over.accumulate = false;
    check_layer(dev, c, kResident, 33, 3, 2 * 96 * ggml_row_bytes(GgmlType::Q8_0, 64) + 16, "chunks, overwrite",
                over);
  }
}

TEST(GpuMoeExperts, ChunkedSlotsAllAndNoneResident) {
  TANDEM_GPU_OR_SKIP(dev);
  const auto c = make_layer({6, 64, 64, GgmlType::Q8_0, GgmlType::Q8_0}, 8);
  const uint64_t slot = 2 * 64 * ggml_row_bytes(GgmlType::Q8_0, 64);
  {  // two slots per binding: two chunks, one per dispatch
    GpuExpertLayer layer(dev, c.shape, kResident, 2 * slot + 16);
    EXPECT_EQ(layer.n_slots(), 4u);
    EXPECT_EQ(layer.n_chunks(), 2u);
    EXPECT_EQ(layer.slot_of(1), -1);
    EXPECT_EQ(layer.slot_of(2), 1);
  }
  check_layer(dev, c, kResident, 1, 3, 2 * slot + 16, "decode, two chunks");
  check_layer(dev, c, kResident, 9, 3, slot + 16, "one slot per chunk");
  check_layer(dev, c, std::vector<uint8_t>(6, 1), 7, 3, 0, "all resident");
  GpuExpertsLayout plain;  // shared-memory reductions; output overwritten
  plain.allow_subgroup = false;
  plain.accumulate = false;
  check_layer(dev, c, kResident, 5, 2, 0, "plain reduction, overwrite", plain);
  // None resident: nothing recorded, nothing allocated, the output untouched.
  GpuExpertLayer none(dev, c.shape, std::vector<uint8_t>(6, 0));
  EXPECT_EQ(none.n_slots(), 0u);
  EXPECT_EQ(none.weight_bytes(), 0u);
}

TEST(GpuMoeExperts, RejectsBadShapes) {
  TANDEM_GPU_OR_SKIP(dev);
  auto make = [&](GpuExpertsShape s, std::vector<uint8_t> resident) { GpuExpertLayer l(dev, s, resident); };
  EXPECT_THROW(make({6, 64, 64, GgmlType::Q8_0, GgmlType::Q8_0}, std::vector<uint8_t>(5, 1)), Error);
  EXPECT_THROW(make({600, 64, 64, GgmlType::Q8_0, GgmlType::Q8_0}, {}), Error);
  EXPECT_THROW(make({6, 64, 64, GgmlType::TQ1_0, GgmlType::Q8_0}, {}), Error);    // no GPU kernel
  EXPECT_THROW(make({6, 64, 256, GgmlType::IQ2_XXS, GgmlType::Q8_0}, {}), Error);  // 64 % 256
  EXPECT_THROW(make({6, 40, 64, GgmlType::Q8_0, GgmlType::Q8_0}, {}), Error);  // 40 % 32
  GpuExpertLayer layer(dev, {6, 64, 64, GgmlType::Q8_0, GgmlType::Q8_0}, kResident);
  std::vector<uint8_t> bytes(64 * 64 * 2);
  EXPECT_THROW(layer.upload_expert(1, bytes.data(), bytes.data(), bytes.data()), Error);  // a CPU expert
}

}  // namespace
}  // namespace tandem::gpu
