// Real llama.cpp-quantized tensors (the tiny DeepSeek GGUFs in shared/golden, Q4_K_M mixes of
// q4_K, q5_0 and q6_K): our decoder must give finite values of the magnitude the models were
// initialised with, and our quantizer must find the exact grid llama.cpp chose, so that
// re-encoding the decoded values reproduces them. Skips when shared/ is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "runtime/gguf/gguf_file.h"
#include "runtime/quant/dequantize.h"
#include "runtime/quant/quantize.h"

namespace tandem {
namespace {

// Rows decoded per tensor: enough for statistics, small enough for ASan runs.
constexpr int64_t kRowsPerTensor = 64;

void check_model(const std::string& file) {
  const std::string path = std::string(TANDEM_SHARED_DIR) + "/golden/" + file;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not found";
  const auto gguf = GgufFile::open(path);
  std::set<std::string> types_seen;
  for (const GgufTensor& t : gguf->tensors()) {
    const auto& info = ggml_type_info(t.type);
    if (info.block_size == 1 || t.shape.size() != 2) continue;  // quantized matrices only
    ASSERT_TRUE(info.can_compute) << t.name << " has type " << info.name;
    types_seen.insert(std::string(info.name));
    const int64_t n = t.shape[0];
    const int64_t rows = std::min(t.rows(), kRowsPerTensor);
    std::vector<float> y(static_cast<size_t>(n)), z(static_cast<size_t>(n));
    std::vector<uint8_t> q(ggml_row_bytes(t.type, uint64_t(n)));
    double sum_sq = 0;
    int64_t blocks = 0, exact_blocks = 0;
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t.type, t.data + uint64_t(r) * t.row_bytes(), y.data(), n);
      quantize_row(t.type, y.data(), q.data(), n);
      dequantize_row(t.type, q.data(), z.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(std::isfinite(y[size_t(i)])) << t.name << " row " << r << " element " << i;
        sum_sq += double(y[size_t(i)]) * y[size_t(i)];
      }
      for (int64_t b = 0; b < n; b += info.block_size) {
        ++blocks;
        exact_blocks += std::equal(y.begin() + b, y.begin() + b + info.block_size, z.begin() + b);
      }
    }
    // The tiny models were initialised with std 1 for the embeddings and c / sqrt(fan_in),
    // c in 0.4 .. 1, for the matrices; a misread scale (wrong bits, wrong sub-block) moves the
    // measured std by large factors.
    const double rms = std::sqrt(sum_sq / double(rows * n));
    const double init_std = t.name == "token_embd.weight" ? 1.0 : 1.0 / std::sqrt(double(n));
    EXPECT_GT(rms / init_std, 0.3) << t.name << " (" << info.name << ")";
    EXPECT_LT(rms / init_std, 1.2) << t.name << " (" << info.name << ")";
    // Decoded values lie on llama.cpp's grid; our scale search finds that same grid for nearly
    // every block (it can miss where llama.cpp's weighted search chose a clipped range).
    std::printf("  %-30s %-5s %lld/%lld blocks re-encoded exactly, std/init %.3f\n",
                t.name.c_str(), std::string(info.name).c_str(), (long long)exact_blocks,
                (long long)blocks, rms / init_std);
    EXPECT_GE(double(exact_blocks), 0.9 * double(blocks)) << t.name << " (" << info.name << ")";
  }
  EXPECT_FALSE(types_seen.empty());
}

TEST(GoldenTensors, TinyV2) { check_model("tiny-v2-q4km.gguf"); }
TEST(GoldenTensors, TinyV3) { check_model("tiny-v3-q4km.gguf"); }

}  // namespace
}  // namespace tandem
