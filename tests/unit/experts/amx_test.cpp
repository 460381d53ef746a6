// The AMX prefill path: the layout's scalar tile against the row kernels on the GGUF bytes, the
// AMX kernels (emulated tile instructions on any AVX-512 CPU; the real ones where the CPU has AMX)
// against the scalar tile, and MoeEngine with the Amx ISA against the scalar expert path.
#include <gtest/gtest.h>

#include <cstdlib>

#include "experts/activation_blocks.h"
#include "experts/kernels/amx_layer.h"
#include "experts/kernels/amx_layout.h"
#include "experts/kernels/row_dot.h"
#include "experts/moe_engine.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/quant/dequantize.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem {
namespace {

using experts::AmxFormat;
using experts::AmxTokenBlock;
using experts::CpuIsa;

constexpr int64_t kRows = 40;  // the third group of 16 is half padding

struct TileCase {
  std::vector<uint8_t> weights;
  experts::AlignedBuffer packed, acts;
  std::vector<std::vector<float>> x;
  int64_t row_bytes, act_bytes;
};

void make_case(const AmxFormat& f, int64_t cols, int n_tokens, uint32_t seed, TileCase& c) {
  std::mt19937 rng(seed);
  c.weights = test::random_matrices(f.type, 1, kRows, cols, rng, 0.1f);
  c.row_bytes = int64_t(ggml_row_bytes(f.type, uint64_t(cols)));
  c.packed.reserve(size_t(experts::amx_matrix_bytes(f, kRows, cols)));
  experts::amx_repack(f, c.weights.data(), c.row_bytes, kRows, cols, c.packed.as<uint8_t>());
  c.act_bytes = experts::activation_row_bytes(f.act, cols);
  c.acts.reserve(size_t(n_tokens * c.act_bytes));
  for (int t = 0; t < n_tokens; ++t) {
    c.x.push_back(test::random_floats(size_t(cols), rng, 1.0f + 0.5f * float(t)));
    experts::quantize_activation_row(f.act, c.x.back().data(), c.acts.as<uint8_t>() + t * c.act_bytes, cols);
  }
}

class AmxTile : public testing::TestWithParam<GgmlType> {
 protected:
  void SetUp() override {
    // The gather and the emulated kernels use AVX-512 for the fp32 side.
    if (!experts::cpu_supports(CpuIsa::Avx512)) GTEST_SKIP() << "CPU lacks avx512";
  }
};

TEST_P(AmxTile, KernelsMatchRowKernels) {
  const AmxFormat f = *experts::amx_format(GetParam());
  const bool hardware = experts::cpu_supports(CpuIsa::Amx);
  for (const int64_t cols : {int64_t(256), int64_t(768)}) {
    for (const int n_tokens : {16, 13, 1}) {
      TileCase c;
      make_case(f, cols, n_tokens, uint32_t(cols + n_tokens), c);
      const void* rows[experts::kAmxTokens];
      for (int t = 0; t < n_tokens; ++t) rows[t] = c.acts.as<uint8_t>() + t * c.act_bytes;
      AmxTokenBlock block;
      experts::amx_emulated::gather(f, rows, n_tokens, cols, block);
      const auto row_dot = experts::row_dot_kernel(f.type, CpuIsa::Scalar);
      std::vector<float> dequant(static_cast<size_t>(cols));
      double err = 0, ref = 0;
      for (int64_t g = 0; g < (kRows + 15) / 16; ++g) {
        const uint8_t* group = c.packed.as<uint8_t>() + g * experts::amx_group_bytes(f, cols);
        float scalar[256], emulated[256], real[256];
        experts::amx_tile_scalar(f, group, cols, block, scalar);
        experts::amx_emulated::tile(f, group, cols, block, emulated);
        if (hardware) experts::amx::tile(f, group, cols, block, real);
        for (int t = 0; t < 16; ++t)
          for (int r = 0; r < 16; ++r) {
            const int64_t row = g * 16 + r;
            const float got = scalar[t * 16 + r];
            const std::string where = "cols " + std::to_string(cols) + " row " + std::to_string(row) + " token " +
                                      std::to_string(t) + "/" + std::to_string(n_tokens);
            if (row >= kRows || t >= n_tokens) {
              EXPECT_EQ(got, 0.0f) << "padding, " << where;
            } else if (f.bf16) {  // bf16 activations (and F16 weights rounded): against fp32
              dequantize_row(f.type, c.weights.data() + row * c.row_bytes, dequant.data(), cols);
              double want = 0;
              for (int64_t i = 0; i < cols; ++i) want += double(dequant[size_t(i)]) * c.x[size_t(t)][size_t(i)];
              err += (got - want) * (got - want), ref += want * want;
            } else {  // same integers as the scalar row kernel: equal up to fp32 rounding
              const float want = row_dot(cols, c.weights.data() + row * c.row_bytes, rows[t]);
              EXPECT_NEAR(got, want, 1e-4f * (1.0f + std::abs(want))) << where;
            }
            EXPECT_NEAR(emulated[t * 16 + r], got, 1e-5f * (1.0f + std::abs(got))) << "emulated, " << where;
            if (hardware) {
              EXPECT_NEAR(real[t * 16 + r], got, 1e-5f * (1.0f + std::abs(got))) << "amx, " << where;
            }
          }
      }
      if (f.bf16) {
        EXPECT_LT(err / ref, 1e-4) << "bf16 rounding, cols " << cols;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, AmxTile,
                         testing::Values(GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::BF16, GgmlType::F16),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(AmxFormat, OtherTypesKeepRowKernels) {
  EXPECT_FALSE(experts::amx_format(GgmlType::Q2_K));
  EXPECT_FALSE(experts::amx_format(GgmlType::Q4_0));
  EXPECT_TRUE(experts::amx_format(GgmlType::Q6_K));
}

// Sum over tokens and slots of a single-expert reference.
template <typename ExpertFn>
std::vector<float> reference_moe(const MoeLayerWeights& w, const std::vector<float>& x, int64_t n_tokens,
                                 const std::vector<int32_t>& ids, const std::vector<float>& weights, int k_used,
                                 ExpertFn expert) {
  std::vector<float> y(size_t(n_tokens * w.hidden), 0.0f), out(size_t(w.hidden));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int k = 0; k < k_used; ++k) {
      expert(w, ids[size_t(t * k_used + k)], x.data() + t * w.hidden, out.data());
      for (int64_t i = 0; i < w.hidden; ++i) y[size_t(t * w.hidden + i)] += weights[size_t(t * k_used + k)] * out[size_t(i)];
    }
  return y;
}

TEST(AmxEngine, MatchesScalarPath) {
  if (!experts::cpu_supports(CpuIsa::Amx)) GTEST_SKIP() << "CPU lacks AMX (or the kernel refused it)";
  struct Case {
    GgmlType gate_up, down;
    int64_t hidden, ffn;
  };
  const Case cases[] = {
      {GgmlType::Q4_K, GgmlType::Q6_K, 256, 512},  // Q4_K_M's mix
      {GgmlType::Q8_0, GgmlType::Q8_0, 96, 160},   // 10 groups of gate/up rows, 6 of down rows
      {GgmlType::BF16, GgmlType::BF16, 64, 72},    // 72 = 64 + 8: padding in gate/up and down tiles
      {GgmlType::Q4_K, GgmlType::Q4_K, 512, 256},
      {GgmlType::Q4_K, GgmlType::Q5_0, 256, 160},  // V2-Lite's down type: converted to Q8_0 tiles
      {GgmlType::Q4_0, GgmlType::Q4_0, 96, 96},
  };
  knobs::set("TANDEM_AMX_KQUANTS", "1");  // Q4_K/Q6_K on the int8 tiles too (off by default)
  for (const Case c : cases) {
    const bool bf16 = c.gate_up == GgmlType::BF16;
    const auto& L = test::cached_layer(c.gate_up, c.down, 4, c.hidden, c.ffn, 23);
    MoeEngineOptions o;
    o.isa = CpuIsa::Amx;
    o.threads_per_node = 2;
    o.pin_threads = false;
    o.max_nodes = 1;
    MoeEngine engine(o);
    const int layer = engine.add_layer(L.weights);
    std::mt19937 rng(8);
    for (const int64_t n_tokens : {int64_t(45), int64_t(17), int64_t(3)}) {
      constexpr int kUsed = 2;
      std::vector<int32_t> ids;
      std::vector<float> weights;
      for (int64_t t = 0; t < n_tokens; ++t) {
        // Expert 3 gets every 9th token (row kernels at 45 tokens), 0..2 the rest (AMX), and at
        // 17 tokens expert 0 takes every token in one slot.
        ids.push_back(n_tokens == 17 ? 0 : (t % 9 == 0 ? 3 : int32_t(t % 3)));
        ids.push_back(int32_t((t + 1) % 3 + 1));
        weights.push_back(0.6f), weights.push_back(0.3f);
      }
      const auto x = test::random_floats(size_t(n_tokens * c.hidden), rng, 1.0f);
      std::vector<float> y(size_t(n_tokens * c.hidden), 7.0f);
      engine.forward(layer, x.data(), n_tokens, ids.data(), weights.data(), kUsed, y.data());
      const std::string what = std::string(ggml_type_name(c.gate_up)) + "/" + std::string(ggml_type_name(c.down)) +
                               " tokens " + std::to_string(n_tokens);
      if (bf16) {  // bf16 activations in the tiles: against fp32
        EXPECT_LT(test::nmse(y, reference_moe(L.weights, x, n_tokens, ids, weights, kUsed, run_expert_f32)), 1e-4)
            << what;
      } else {  // same quantized integers as the scalar path; the tiles accumulate scale * dot and
                // the Q4_K min term per sub-block in fp32 where the scalar path sums in double
                // (measured on the device: 1.7e-8), far below the 1e-3 of the quantization itself
        EXPECT_LT(test::nmse(y, reference_moe(L.weights, x, n_tokens, ids, weights, kUsed, run_expert_scalar)), 1e-6)
            << what;
      }
    }
  }
  knobs::unset("TANDEM_AMX_KQUANTS");
}

TEST(AmxFormat, KQuantsOnlyOnRequest) {
  knobs::unset("TANDEM_AMX_KQUANTS");
  EXPECT_TRUE(experts::amx_takes(GgmlType::BF16));
  EXPECT_TRUE(experts::amx_takes(GgmlType::Q8_0));
  EXPECT_FALSE(experts::amx_takes(GgmlType::Q4_K));
  knobs::set("TANDEM_AMX_KQUANTS", "1");
  EXPECT_TRUE(experts::amx_takes(GgmlType::Q6_K));
  knobs::unset("TANDEM_AMX_KQUANTS");
}

TEST(AmxIsa, EnvironmentSelectsIt) {
  if (!experts::cpu_supports(CpuIsa::Amx)) {
    EXPECT_NE(experts::best_cpu_isa(), CpuIsa::Amx);
    GTEST_SKIP() << "CPU lacks AMX: " << experts::amx_permission_error();
  }
  EXPECT_EQ(experts::best_cpu_isa(), CpuIsa::Amx);
  knobs::set("TANDEM_CPU_ISA", "amx");
  EXPECT_EQ(experts::selected_cpu_isa(), CpuIsa::Amx);
  knobs::set("TANDEM_CPU_ISA", "avx512");
  EXPECT_EQ(experts::selected_cpu_isa(), CpuIsa::Avx512);
  knobs::unset("TANDEM_CPU_ISA");
}

}  // namespace
}  // namespace tandem
