// Embedding lookup from quantized tables and top-k routing against CPU references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/gpu/embedding.h"
#include "runtime/gpu/topk_router.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

TEST(GpuEmbedding, LooksUpQuantizedRows) {
  TANDEM_GPU_OR_SKIP(dev);
  for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,
                        GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                        GgmlType::IQ1_S, GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
                        GgmlType::IQ3_XXS, GgmlType::IQ3_S}) {
    const uint32_t vocab = 50, cols = 256;
    std::vector<float> table;
    const std::vector<uint8_t> bytes = testing::make_weights(type, vocab, cols, table, 21);
    GpuBuffer storage;
    const auto w = upload_weight(dev, storage, type, vocab, cols, bytes.data(), "token_embd");
    const std::vector<int32_t> ids{3, 0, 49, 3, 17};
    auto ib = dev.allocate(ids.size() * 4, "ids");
    dev.upload(ib.span(), ids.data(), ids.size() * 4);
    auto out = dev.allocate(ids.size() * cols * 4, "out");
    CommandSequence seq(dev);
    record_embedding(seq, w, ib.span(), out.span(), uint32_t(ids.size()));
    seq.run();
    const auto got = testing::download_floats(dev, out, ids.size() * cols);
    for (size_t t = 0; t < ids.size(); ++t)
      for (uint32_t i = 0; i < cols; ++i)
        ASSERT_EQ(got[t * cols + i], table[size_t(ids[t]) * cols + i]) << ggml_type_name(type) << " token " << t;
  }
}

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Routed route_reference(const std::vector<float>& logits, const std::vector<float>& bias, const RouterParams& p) {
  const uint32_t E = p.n_expert;
  std::vector<double> score(E), choice(E);
  if (p.sigmoid_gate) {
    for (uint32_t e = 0; e < E; ++e) score[e] = 1 / (1 + std::exp(-double(logits[e])));
  } else {
    const double m = *std::max_element(logits.begin(), logits.begin() + E);
    double s = 0;
    for (uint32_t e = 0; e < E; ++e) s += score[e] = std::exp(logits[e] - m);
    for (auto& v : score) v /= s;
  }
  for (uint32_t e = 0; e < E; ++e) choice[e] = score[e] + (bias.empty() ? 0 : bias[e]);
  std::vector<bool> allowed(E, true);
  if (p.n_groups > 1) {
    const uint32_t per = E / p.n_groups;
    std::vector<std::pair<double, uint32_t>> g(p.n_groups);
    for (uint32_t gi = 0; gi < p.n_groups; ++gi) {
      std::vector<double> c(choice.begin() + gi * per, choice.begin() + (gi + 1) * per);
      std::sort(c.rbegin(), c.rend());
      g[gi] = {p.group_top2 ? c[0] + c[1] : c[0], gi};
    }
    std::stable_sort(g.begin(), g.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::fill(allowed.begin(), allowed.end(), false);
    for (uint32_t k = 0; k < p.top_groups; ++k)
      for (uint32_t e = g[k].second * per; e < (g[k].second + 1) * per; ++e) allowed[e] = true;
  }
  std::vector<uint32_t> order;
  for (uint32_t e = 0; e < E; ++e)
    if (allowed[e]) order.push_back(e);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return choice[a] > choice[b]; });
  Routed r;
  double total = 0;
  for (uint32_t k = 0; k < p.k; ++k) {
    r.ids.push_back(int32_t(order[k]));
    r.weights.push_back(float(score[order[k]]));
    total += score[order[k]];
  }
  for (auto& w : r.weights) w = float(w * (p.normalize ? 1 / total : 1) * p.routed_scale);
  return r;
}

// ties: logits rounded to integers, so many experts share a score (the lower id must win).
void check_router(const RouterParams& p, bool with_bias, uint32_t n_tokens = 4, bool ties = false) {
  TANDEM_GPU_OR_SKIP(dev);
  auto logits = testing::random_floats(size_t(n_tokens) * p.n_expert, 31, -4, 4);
  if (ties)
    for (auto& v : logits) v = std::round(v);
  const auto bias = with_bias ? testing::random_floats(p.n_expert, 32, -0.2f, 0.2f) : std::vector<float>{};
  auto lb = testing::upload_floats(dev, logits, "logits");
  GpuBuffer bb;
  if (with_bias) bb = testing::upload_floats(dev, bias, "bias");
  auto ib = dev.allocate(n_tokens * p.k * 4, "ids"), wb = dev.allocate(n_tokens * p.k * 4, "weights");
  CommandSequence seq(dev);
  record_topk_router(seq, lb.span(), with_bias ? bb.span() : GpuSpan{}, ib.span(), wb.span(), n_tokens, p);
  seq.run();
  std::vector<int32_t> ids(n_tokens * p.k);
  dev.download(ib.span(), ids.data(), ids.size() * 4);
  const auto weights = testing::download_floats(dev, wb, n_tokens * p.k);
  for (uint32_t t = 0; t < n_tokens; ++t) {
    const std::vector<float> row(logits.begin() + t * p.n_expert, logits.begin() + (t + 1) * p.n_expert);
    const auto want = route_reference(row, bias, p);
    for (uint32_t k = 0; k < p.k; ++k) {
      EXPECT_EQ(ids[t * p.k + k], want.ids[k]) << "token " << t << " slot " << k;
      EXPECT_NEAR(weights[t * p.k + k], want.weights[k], 1e-5 * std::max(1.0f, std::abs(want.weights[k])));
    }
  }
}

TEST(GpuRouter, SoftmaxTopK) { check_router({64, 6, false, 1, 1, false, false, 1.0f}, false); }

TEST(GpuRouter, SoftmaxGroupLimitedByMax) { check_router({64, 6, false, 8, 3, false, false, 16.0f}, false); }

TEST(GpuRouter, SigmoidBiasGroupedTop2Normalized) {
  // DeepSeek-V3 shape: 256 experts in 8 groups, keep 4 groups, top-8, normalised, scale 2.5.
  check_router({256, 8, true, 8, 4, true, true, 2.5f}, true);
}

TEST(GpuRouter, ManyTokensV3Shape) { check_router({256, 8, true, 8, 4, true, true, 2.5f}, true, 37); }

TEST(GpuRouter, TiesGoToTheLowerId) {
  check_router({64, 6, false, 1, 1, false, false, 1.0f}, false, 9, true);
  check_router({256, 8, true, 8, 4, true, true, 2.5f}, false, 9, true);  // tied groups too
  check_router({64, 6, false, 8, 3, false, false, 1.0f}, false, 9, true);
}

TEST(GpuRouter, WidestAndOddShapes) {
  check_router({512, 8, true, 1, 1, false, true, 1.0f}, true, 5);     // the most experts, two per thread
  check_router({160, 6, false, 1, 1, false, true, 16.0f}, false, 7);  // not a multiple of the workgroup
  check_router({160, 7, true, 20, 5, true, false, 1.0f}, true, 3);    // 20 groups of 8, odd k
  check_router({8, 8, false, 1, 1, false, true, 1.0f}, false, 2);     // k == n_expert
  check_router({512, 64, false, 64, 16, false, false, 1.0f}, false, 2);  // the largest k and group count
}

TEST(GpuRouter, RejectsBadShapes) {
  TANDEM_GPU_OR_SKIP(dev);
  auto b = dev.allocate(4096, "b");
  CommandSequence seq(dev);
  EXPECT_THROW(record_topk_router(seq, b.span(), {}, b.span(), b.span(), 1, {64, 6, false, 7, 3}), Error);
  EXPECT_THROW(record_topk_router(seq, b.span(), {}, b.span(), b.span(), 1, {64, 30, false, 8, 3}), Error);
}

}  // namespace
}  // namespace tandem::gpu
