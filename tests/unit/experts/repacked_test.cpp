// The prefill paths: the repacked K-quant layouts (Q4_K, Q5_K, Q6_K) with their scalar tile
// against the row kernels on the GGUF bytes and the AVX-512 tile against the scalar one (token
// counts 1..8, row counts that are not multiples of 16); then MoeEngine with each prefill path
// forced (repacked tile, dequantize + sgemm, row kernels) and in Auto, against the references,
// on routings with odd token counts, idle experts and every token on one expert.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/repacked.h"
#include "experts/kernels/row_dot.h"
#include "experts/moe_engine.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem {
namespace {

using experts::CpuIsa;
using Path = MoeEngineOptions::PrefillPath;

class RepackedTile : public testing::TestWithParam<GgmlType> {};

TEST_P(RepackedTile, MatchesRowKernels) {
  constexpr int64_t kRows = 40, kCols = 512;  // 40 rows: the third group is half padding
  const GgmlType type = GetParam();
  const experts::RepackedFormat* f = experts::repacked_format(type);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->block_bytes % 64, 0);
  std::mt19937 rng(3);
  const auto w = test::random_matrices(type, 1, kRows, kCols, rng, 0.1f);
  const int64_t row_bytes = int64_t(ggml_row_bytes(type, kCols));
  // The layout costs at most 6 % more than the GGUF bytes (16 full rows per group).
  EXPECT_LE(double(f->bytes(16, kCols)), 1.06 * double(16 * row_bytes));
  experts::AlignedBuffer packed, acts;
  packed.reserve(size_t(f->bytes(kRows, kCols)));
  f->repack(w.data(), row_bytes, kRows, kCols, packed.as<uint8_t>());

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
  const auto row_dot = experts::row_dot_kernel(type, CpuIsa::Scalar);
  const auto simd_tile = experts::repacked_tile_kernel(type, CpuIsa::Avx512);
  EXPECT_EQ(simd_tile != nullptr, experts::cpu_supports(CpuIsa::Avx512));
  for (int64_t g = 0; g < (kRows + 15) / 16; ++g) {
    const uint8_t* group = packed.as<uint8_t>() + g * f->group_bytes(kCols);
    for (int nt = 1; nt <= kTokens; ++nt) {
      float scalar[kTokens * 16], simd[kTokens * 16];
      f->tile_scalar(group, kCols, act_rows, sum_rows, nt, scalar);
      if (simd_tile) simd_tile(group, kCols, act_rows, sum_rows, nt, simd);
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
          if (simd_tile) {
            EXPECT_NEAR(simd[t * 16 + r], got, 1e-5f * (1.0f + std::abs(got))) << "avx512 row " << row << " nt " << nt;
          }
        }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, RepackedTile, testing::Values(GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(RepackedFormats, OnlyKQuantsHaveOne) {
  EXPECT_EQ(experts::repacked_format(GgmlType::Q8_0), nullptr);
  EXPECT_EQ(experts::repacked_format(GgmlType::F16), nullptr);
  EXPECT_EQ(experts::repacked_tile_kernel(GgmlType::Q4_K, CpuIsa::Avx2), nullptr);
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

struct Case {
  GgmlType gate_up, down;
  int64_t hidden, ffn;
};

MoeEngineOptions engine_options(CpuIsa isa, Path path, std::optional<bool> repack) {
  MoeEngineOptions o;
  o.isa = isa;
  o.threads_per_node = 2;
  o.pin_threads = false;
  o.max_nodes = 1;
  o.prefill_path = path;
  o.repack_for_prefill = repack;
  o.blas_min_tokens = 12;  // Auto: experts of 12..15 tokens take sgemm, 16+ the repacked tile
  return o;
}

// 37 tokens, k=2 over 5 experts: expert 4 idle, expert 3 gets 6 tokens (Auto: the repacked tile
// where a layout exists, else the row kernels), experts 0..2 the rest (Auto: tile or sgemm from 12
// tokens); then 13 tokens all on expert 1.
// The expectations follow the ISA the engine was given, never the host's best one.
void check_paths(CpuIsa isa, const Case& c, Path path, std::optional<bool> repack) {
  const auto& L = test::cached_layer(c.gate_up, c.down, 5, c.hidden, c.ffn, 21);
  MoeEngine engine(engine_options(isa, path, repack));
  ASSERT_EQ(engine.isa(), isa);
  const int layer = engine.add_layer(L.weights);
  // The repacked tile exists for avx512 and amx (amx runs the same vpdpbusd tiles below its
  // token threshold and wherever no AMX layout applies).
  const bool tile_isa = isa == CpuIsa::Avx512 || isa == CpuIsa::Amx;
  const bool has_layout = experts::repacked_format(c.gate_up) || experts::repacked_format(c.down);
  if (repack == true && tile_isa && has_layout) {
    EXPECT_GT(engine.repacked_bytes(layer), 0);
  }
  if (repack == false || path == Path::RowKernels || path == Path::Blas || !tile_isa) {
    EXPECT_EQ(engine.repacked_bytes(layer), 0);
  }
  std::mt19937 rng(8);
  for (int round = 0; round < 2; ++round) {
    const int64_t n_tokens = round == 0 ? 37 : 13;
    const int k_used = round == 0 ? 2 : 1;
    std::vector<int32_t> ids;
    std::vector<float> weights;
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (round == 0) {
        ids.push_back(t % 7 == 0 ? 3 : int32_t(t % 3));
        ids.push_back(int32_t((t + 1) % 3));
        weights.push_back(0.6f), weights.push_back(0.3f);
      } else {
        ids.push_back(1), weights.push_back(0.9f);
      }
    }
    const auto x = test::random_floats(size_t(n_tokens * c.hidden), rng, 1.0f);
    std::vector<float> y(size_t(n_tokens * c.hidden), 7.0f);
    engine.forward(layer, x.data(), n_tokens, ids.data(), weights.data(), k_used, y.data());
    const std::string what = std::string(ggml_type_name(c.gate_up)) + "/" + std::string(ggml_type_name(c.down)) +
                             " ffn " + std::to_string(c.ffn) + " path " + std::to_string(int(path)) + " tokens " +
                             std::to_string(n_tokens) + " isa " + std::string(experts::cpu_isa_name(isa));
    const auto f32 = reference_moe(L.weights, x, n_tokens, ids, weights, k_used, run_expert_f32);
    if (path == Path::Blas) {  // fp32 end to end: the fp32 reference up to rounding
      EXPECT_LT(test::nmse(y, f32), 1e-9) << what;
    } else if (path == Path::Auto) {  // sgemm experts are fp32, the others quantize activations
      EXPECT_LT(test::nmse(y, f32), 1e-3) << what;
    } else {  // integer kernels: the scalar expert path (same activation quantization)
      // The hidden activations are quantized again before down, so a last-bit difference in a
      // SIMD kernel's fp32 sum can move one value across a quantization step (avx2 Q5_K: 3e-7);
      // a wrong kernel is off by 1e-3 and more.
      const auto scalar = reference_moe(L.weights, x, n_tokens, ids, weights, k_used, run_expert_scalar);
      EXPECT_LT(test::nmse(y, scalar), 1e-6) << what;
    }
  }
}

const Case kCases[] = {
    {GgmlType::Q4_K, GgmlType::Q4_K, 256, 256},
    {GgmlType::Q4_K, GgmlType::Q6_K, 512, 256},  // Q4_K_M: some down tensors in Q6_K
    {GgmlType::Q5_K, GgmlType::Q5_K, 256, 256},
    {GgmlType::Q6_K, GgmlType::Q4_K, 256, 256},
    {GgmlType::Q4_K, GgmlType::F16, 256, 40},   // ffn 40: a half-filled last group of 16 rows
    {GgmlType::Q4_K, GgmlType::Q8_0, 256, 96},  // ffn not a multiple of 256, no down layout
};

// Every engine test runs on each ISA the host supports (skipped where it does not), so a host
// with AMX also covers the avx2 and avx512 paths.
class PrefillPaths : public testing::TestWithParam<CpuIsa> {
 protected:
  void SetUp() override {
    if (!experts::cpu_supports(GetParam())) GTEST_SKIP() << "CPU lacks " << experts::cpu_isa_name(GetParam());
  }
};

TEST_P(PrefillPaths, RepackedTileMatchesScalarPath) {
  for (const Case& c : kCases) check_paths(GetParam(), c, Path::Repacked, true);
}

TEST_P(PrefillPaths, RepackOnAndOffAgree) {
  for (const Case& c : kCases) {
    check_paths(GetParam(), c, Path::Auto, true);
    check_paths(GetParam(), c, Path::Auto, false);
  }
}

// The forced sgemm path is fp32 end to end on every ISA: on amx too (no AMX tiles there).
TEST_P(PrefillPaths, BlasMatchesF32Reference) {
  for (const Case& c : kCases) check_paths(GetParam(), c, Path::Blas, std::nullopt);
  check_paths(GetParam(), {GgmlType::Q8_0, GgmlType::BF16, 64, 48}, Path::Blas, std::nullopt);
}

TEST_P(PrefillPaths, RowKernelsMatchScalarPath) {
  for (const Case& c : kCases) check_paths(GetParam(), c, Path::RowKernels, std::nullopt);
}

INSTANTIATE_TEST_SUITE_P(Isas, PrefillPaths,
                         testing::Values(CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512, CpuIsa::Amx),
                         [](const auto& info) { return std::string(experts::cpu_isa_name(info.param)); });

// repack on vs off with the integer paths only (no sgemm): identical math, so the outputs agree
// to float rounding.
TEST(PrefillPaths, EngineRepackOnOffSameResult) {
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q6_K, 4, 512, 256, 5);
  std::mt19937 rng(2);
  constexpr int64_t kTokens = 41;
  std::vector<int32_t> ids;
  std::vector<float> weights;
  for (int64_t t = 0; t < kTokens; ++t) ids.push_back(int32_t(t % 4)), ids.push_back(int32_t((t + 2) % 4)),
      weights.push_back(0.5f), weights.push_back(0.25f);
  const auto x = test::random_floats(size_t(kTokens * 512), rng, 1.0f);
  std::vector<float> on(size_t(kTokens * 512)), off(on.size());
  for (bool repack : {true, false}) {
    MoeEngineOptions o = engine_options(experts::best_cpu_isa(), Path::Auto, repack);
    o.blas_min_tokens = 1 << 20;
    MoeEngine engine(o);
    const int layer = engine.add_layer(L.weights);
    engine.forward(layer, x.data(), kTokens, ids.data(), weights.data(), 2, (repack ? on : off).data());
  }
  EXPECT_LT(test::nmse(on, off), 1e-10);
}

// Resident file-backed bytes of this process (RssFile in /proc/self/status), 0 when unreadable.
int64_t rss_file_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("RssFile:", 0) == 0) return std::stoll(line.substr(8)) * 1024;
  return 0;
}

// Experts read from a file mapping, as from the GGUF mmap: once repacked, their mapped pages
// leave the process (resident memory holds the bytes once) and the results stay right.
TEST(PrefillPaths, RepackedLayerReleasesItsMappedSource) {
  if (!experts::cpu_supports(CpuIsa::Avx512)) GTEST_SKIP() << "the repacked layout needs avx512";
  const auto& L = test::cached_layer(GgmlType::Q4_K, GgmlType::Q4_K, 4, 512, 256, 31);
  char path[] = "/tmp/tandem-release-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::remove(path);
  const size_t bytes = L.gate.size() + L.up.size() + L.down.size();
  for (const auto* part : {&L.gate, &L.up, &L.down})
    ASSERT_EQ(write(fd, part->data(), part->size()), ssize_t(part->size()));
  void* map = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  ASSERT_NE(map, MAP_FAILED);
  MoeLayerWeights w = L.weights;
  w.gate = static_cast<const uint8_t*>(map);
  w.up = w.gate + L.gate.size();
  w.down = w.up + L.up.size();
  MoeEngineOptions o = engine_options(experts::best_cpu_isa(), Path::Auto, true);
  {  // the first engine maps and touches library code (hwloc, kernels): not counted below
    MoeEngine warm(o);
    warm.add_layer(L.weights);
  }
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < bytes; i += 4096) sink = sink + w.gate[i];  // every page resident
  o.release_mapped_sources = true;
  MoeEngine engine(o);
  const int64_t before = rss_file_bytes();
  const int layer = engine.add_layer(w);
  ASSERT_GT(engine.repacked_bytes(layer), 0);
  const int64_t after = rss_file_bytes();
  if (before > 0) {
    EXPECT_LT(after, before - int64_t(bytes) * 3 / 4) << "before " << before << " after " << after;
  }
  std::mt19937 rng(4);
  constexpr int64_t kTokens = 5;
  std::vector<int32_t> ids;
  std::vector<float> weights;
  for (int64_t t = 0; t < kTokens; ++t) ids.push_back(int32_t(t % 4)), weights.push_back(0.7f);
  const auto x = test::random_floats(size_t(kTokens * 512), rng, 1.0f);
  std::vector<float> y(size_t(kTokens * 512));
  engine.forward(layer, x.data(), kTokens, ids.data(), weights.data(), 1, y.data());
  const auto want = reference_moe(L.weights, x, kTokens, ids, weights, 1, run_expert_scalar);
  EXPECT_LT(test::nmse(y, want), 1e-6);
  munmap(map, bytes);
}

}  // namespace
}  // namespace tandem
