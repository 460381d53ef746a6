// The repacked Q4_K prefill layout: its scalar tile kernel against the row kernels on the GGUF
// bytes, the AVX-512 tile kernel against the scalar one (token counts 1..8, row counts that are
// not multiples of 16), and MoeEngine with repack_for_prefill against the scalar expert path.
#include <gtest/gtest.h>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/repacked_q4k.h"
#include "experts/kernels/row_dot.h"
#include "experts/moe_engine.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem {
namespace {

using experts::CpuIsa;

TEST(RepackedQ4K, TileKernelsMatchRowKernels) {
  constexpr int64_t kRows = 40, kCols = 512;  // 40 rows: the third group is half padding
  std::mt19937 rng(3);
  const auto w = test::random_matrices(GgmlType::Q4_K, 1, kRows, kCols, rng, 0.1f);
  const int64_t row_bytes = int64_t(ggml_row_bytes(GgmlType::Q4_K, kCols));
  experts::AlignedBuffer packed, acts;
  packed.reserve(size_t(experts::repacked_bytes(kRows, kCols)));
  experts::repack_q4k_rows(w.data(), row_bytes, kRows, kCols, packed.as<uint8_t>());

  constexpr int kTokens = experts::kRepackMaxTokens;
  const int64_t act_bytes = experts::activation_row_bytes(experts::ActFormat::Q8K, kCols);
  acts.reserve(size_t(kTokens * act_bytes));
  std::vector<float> sums(size_t(kTokens * kCols / 32));
  const void* act_rows[kTokens];
  const float* sum_rows[kTokens];
  for (int t = 0; t < kTokens; ++t) {
    const auto x = test::random_floats(kCols, rng, 1.0f + float(t));
    act_rows[t] = acts.as<uint8_t>() + t * act_bytes;
    experts::quantize_activation_row(experts::ActFormat::Q8K, x.data(), acts.as<uint8_t>() + t * act_bytes, kCols);
    experts::q8k_sub_block_sums(act_rows[t], kCols, sums.data() + t * kCols / 32);
    sum_rows[t] = sums.data() + t * kCols / 32;
  }
  const auto row_dot = experts::row_dot_kernel(GgmlType::Q4_K, CpuIsa::Scalar);
  const bool have_avx512 = experts::cpu_supports(CpuIsa::Avx512);
  for (int64_t g = 0; g < (kRows + 15) / 16; ++g) {
    const uint8_t* group = packed.as<uint8_t>() + g * experts::repacked_group_bytes(kCols);
    for (int nt = 1; nt <= kTokens; ++nt) {
      float scalar[kTokens * 16], simd[kTokens * 16];
      experts::repacked_q4k_tile_scalar(group, kCols, act_rows, sum_rows, nt, scalar);
      if (have_avx512) experts::avx512::repacked_q4k_tile(group, kCols, act_rows, sum_rows, nt, simd);
      for (int t = 0; t < nt; ++t)
        for (int r = 0; r < 16; ++r) {
          const int64_t row = g * 16 + r;
          const float got = scalar[t * 16 + r];
          if (row >= kRows) {
            EXPECT_EQ(got, 0.0f) << "padding row " << row;
          } else {
            const float want = row_dot(kCols, w.data() + row * row_bytes, act_rows[t]);
            EXPECT_NEAR(got, want, 1e-4f * (1.0f + std::abs(want))) << "row " << row << " token " << t;
          }
          if (have_avx512) {
            EXPECT_NEAR(simd[t * 16 + r], got, 1e-5f * (1.0f + std::abs(got))) << "avx512 row " << row << " nt " << nt;
          }
        }
    }
  }
}

// Sum over tokens and slots of the scalar expert path (same quantization as the engine).
std::vector<float> scalar_moe(const MoeLayerWeights& w, const std::vector<float>& x, int64_t n_tokens,
                              const std::vector<int32_t>& ids, const std::vector<float>& weights, int k_used) {
  std::vector<float> y(size_t(n_tokens * w.hidden), 0.0f), out(size_t(w.hidden));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int k = 0; k < k_used; ++k) {
      run_expert_scalar(w, ids[size_t(t * k_used + k)], x.data() + t * w.hidden, out.data());
      for (int64_t i = 0; i < w.hidden; ++i) y[size_t(t * w.hidden + i)] += weights[size_t(t * k_used + k)] * out[size_t(i)];
    }
  return y;
}

TEST(RepackedQ4K, EngineMatchesScalarPath) {
  if (!experts::cpu_supports(CpuIsa::Avx512)) GTEST_SKIP() << "CPU lacks avx512";
  struct Case {
    GgmlType down;
    int64_t hidden, ffn;
  };
  // F16 down lets ffn (the gate/up row count) be 40: a half-filled last group of 16 rows.
  for (const Case c : {Case{GgmlType::Q4_K, 256, 256}, Case{GgmlType::F16, 256, 40}}) {
    const auto& L = test::cached_layer(GgmlType::Q4_K, c.down, 4, c.hidden, c.ffn, 21);
    MoeEngineOptions o;
    o.isa = CpuIsa::Avx512;
    o.threads_per_node = 2;
    o.pin_threads = false;
    o.max_nodes = 1;
    o.repack_for_prefill = true;
    MoeEngine engine(o);
    const int layer = engine.add_layer(L.weights);
    std::mt19937 rng(8);
    constexpr int64_t kTokens = 45;  // not a multiple of 8 or 32
    constexpr int kUsed = 2;
    std::vector<int32_t> ids;
    std::vector<float> weights;
    for (int64_t t = 0; t < kTokens; ++t) {
      // Expert 3 only gets every 9th token (fewer than 16: row-kernel path), 0..2 the rest.
      ids.push_back(t % 9 == 0 ? 3 : int32_t(t % 3));
      ids.push_back(int32_t((t + 1) % 3));
      weights.push_back(0.6f), weights.push_back(0.3f);
    }
    const auto x = test::random_floats(size_t(kTokens * c.hidden), rng, 1.0f);
    std::vector<float> y(size_t(kTokens * c.hidden), 7.0f);
    engine.forward(layer, x.data(), kTokens, ids.data(), weights.data(), kUsed, y.data());
    const auto want = scalar_moe(L.weights, x, kTokens, ids, weights, kUsed);
    EXPECT_LT(test::nmse(y, want), 1e-9) << "down " << ggml_type_name(c.down) << " ffn " << c.ffn;
  }
}

}  // namespace
}  // namespace tandem
