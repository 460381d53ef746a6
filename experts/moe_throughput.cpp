#include "experts/moe_throughput.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/core/half.h"

namespace tandem::experts {
namespace {

struct ScaleFields {
  int offset[2];  // byte offsets of fp16 scale fields in a block (-1: none)
};

ScaleFields scale_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {{0, -1}};
    case GgmlType::IQ4_NL: case GgmlType::IQ4_XS: return {{0, -1}};
    case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S: case GgmlType::IQ3_XXS:
    case GgmlType::IQ3_S: case GgmlType::IQ1_S: return {{0, -1}};
    case GgmlType::TQ1_0: return {{52, -1}};
    case GgmlType::TQ2_0: return {{64, -1}};
    case GgmlType::Q4_1: case GgmlType::Q5_1: return {{0, 2}};
    case GgmlType::Q4_K: case GgmlType::Q5_K: return {{0, 2}};
    case GgmlType::Q2_K: return {{80, 82}};
    case GgmlType::Q3_K: return {{108, -1}};
    case GgmlType::Q6_K: return {{208, -1}};
    default: return {{-1, -1}};
  }
}

}  // namespace

void fill_random_blocks(GgmlType type, uint8_t* dst, int64_t rows, int64_t cols, uint32_t seed) {
  const auto& info = ggml_type_info(type);
  const int64_t bytes = rows * int64_t(ggml_row_bytes(type, uint64_t(cols)));
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng();
    std::memcpy(dst + i, &v, 8);
  }
  for (int64_t i = bytes / 8 * 8; i < bytes; ++i) dst[i] = uint8_t(rng());
  std::uniform_real_distribution<float> small(0.001f, 0.01f);
  const int64_t n_blocks = bytes / info.type_size;
  if (type == GgmlType::F16 || type == GgmlType::BF16 || type == GgmlType::F32) {
    for (int64_t i = 0; i < n_blocks; ++i) {
      const float v = small(rng) - 0.005f;
      if (type == GgmlType::F32) std::memcpy(dst + 4 * i, &v, 4);
      else {
        const uint16_t h = type == GgmlType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
    return;
  }
  const ScaleFields f = scale_fields(type);
  for (int64_t b = 0; b < n_blocks; ++b)
    for (int off : f.offset)
      if (off >= 0) {
        const uint16_t h = f32_to_f16(small(rng));
        std::memcpy(dst + b * info.type_size + off, &h, 2);
      }
}

std::vector<MoeBenchResult> run_moe_bench(const MoeEngineOptions& options, const MoeBenchConfig& c) {
  MoeEngine engine(options);
  const GgmlType down_type = c.down_type.value_or(c.type);
  const int64_t gate_bytes = c.n_experts * c.ffn * int64_t(ggml_row_bytes(c.type, uint64_t(c.hidden)));
  const int64_t down_bytes = c.n_experts * c.hidden * int64_t(ggml_row_bytes(down_type, uint64_t(c.ffn)));
  if (c.layers < 1) fail("bench experts: layers must be at least 1");
  // Layer l's gate/up/down use seeds seed+3l, +1, +2 (ggml_moe_peer fills the same bytes).
  std::vector<std::vector<uint8_t>> storage;
  std::vector<int> layer_ids;
  for (int l = 0; l < c.layers; ++l) {
    std::vector<uint8_t> gate(static_cast<size_t>(gate_bytes)), up(static_cast<size_t>(gate_bytes)),
        down(static_cast<size_t>(down_bytes));
    const uint32_t seed = c.seed + 3 * uint32_t(l);
    fill_random_blocks(c.type, gate.data(), c.n_experts * c.ffn, c.hidden, seed);
    fill_random_blocks(c.type, up.data(), c.n_experts * c.ffn, c.hidden, seed + 1);
    fill_random_blocks(down_type, down.data(), c.n_experts * c.hidden, c.ffn, seed + 2);
    layer_ids.push_back(engine.add_layer({c.type, c.type, down_type, gate.data(), up.data(), down.data(), c.n_experts,
                                          c.hidden, c.ffn}));
    storage.push_back(std::move(gate)), storage.push_back(std::move(up)), storage.push_back(std::move(down));
  }
  const int layer = layer_ids[0];
  const int k = int(std::min<int64_t>(c.k_used, c.n_experts));
  if (k < 1) fail("bench experts: k_used must be at least 1");
  const double expert_bytes = double(engine.expert_bytes(layer));
  std::mt19937 rng(c.seed);
  std::vector<MoeBenchResult> results;
  for (int64_t n : c.token_counts) {
    if (n < 1) fail("bench experts: token count ", n, " must be at least 1");
    std::vector<float> x(size_t(n * c.hidden)), y(size_t(n * c.hidden));
    std::normal_distribution<float> normal;
    for (auto& v : x) v = normal(rng);
    std::vector<int32_t> ids;
    std::vector<float> weights(size_t(n * k), 1.0f / float(k));
    std::set<int32_t> active;
    for (int64_t t = 0; t < n; ++t) {  // k distinct experts per token
      std::vector<int32_t> all(size_t(c.n_experts));
      for (int32_t e = 0; e < int32_t(c.n_experts); ++e) all[size_t(e)] = e;
      std::shuffle(all.begin(), all.end(), rng);
      for (int j = 0; j < k; ++j) ids.push_back(all[size_t(j)]), active.insert(all[size_t(j)]);
    }
    for (int l : layer_ids) engine.forward(l, x.data(), n, ids.data(), weights.data(), k, y.data());  // warm-up
    int iters = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double elapsed = 0, slept = 0;
    do {
      if (c.gap_us > 0) {  // not timed: only the forward after it is
        const auto s0 = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(std::chrono::microseconds(int64_t(c.gap_us)));
        slept += std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      }
      engine.forward(layer_ids[size_t(iters) % layer_ids.size()], x.data(), n, ids.data(), weights.data(), k, y.data());
      ++iters;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - slept;
    } while (elapsed < c.min_seconds || iters < 2);
    MoeBenchResult r;
    r.tokens = n;
    r.active_experts = int64_t(active.size());
    r.seconds_per_forward = elapsed / iters;
    r.tokens_per_s = double(n) / r.seconds_per_forward;
    r.weight_gb_per_s = expert_bytes * double(active.size()) / r.seconds_per_forward / 1e9;
    results.push_back(r);
  }
  return results;
}

}  // namespace tandem::experts
