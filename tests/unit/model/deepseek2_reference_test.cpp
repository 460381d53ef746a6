// The reference forward pass checked against itself: processing a prompt at once or token by
// token (through the KV cache) must give the same logits.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/model/deepseek2/deepseek2_reference.h"

namespace tandem {
namespace {

std::string golden(const std::string& name) { return std::string(TANDEM_SHARED_DIR) + "/golden/" + name; }

double max_rel_diff(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return num / (den > 0 ? den : 1.0);
}

class ReferenceOnGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ReferenceOnGolden, IncrementalDecodingMatchesBatch) {
  const std::string path = golden(GetParam());
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  auto file = GgufFile::open(path);
  const auto weights = Deepseek2Weights::from_gguf(*file);
  Deepseek2Reference lm(weights);
  const std::vector<int32_t> tokens = {1, 50, 7, 300, 12, 9, 1000, 5};
  std::vector<float> batch;
  lm.forward(tokens, batch);
  EXPECT_EQ(lm.n_past(), int64_t(tokens.size()));

  lm.reset();
  const int64_t nv = lm.n_vocab();
  std::vector<float> step;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t one[1] = {tokens[i]};
    lm.forward(one, step);
    ASSERT_EQ(step.size(), size_t(nv));
    EXPECT_LT(max_rel_diff(step.data(), batch.data() + i * size_t(nv), size_t(nv)), 1e-4) << "position " << i;
  }
}

TEST_P(ReferenceOnGolden, RejectsTokenOutsideVocabulary) {
  const std::string path = golden(GetParam());
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  auto file = GgufFile::open(path);
  const auto weights = Deepseek2Weights::from_gguf(*file);
  Deepseek2Reference lm(weights);
  const std::vector<int32_t> bad = {int32_t(lm.n_vocab())};
  std::vector<float> logits;
  EXPECT_THROW(lm.forward(bad, logits), Error);
}

INSTANTIATE_TEST_SUITE_P(Golden, ReferenceOnGolden, ::testing::Values("tiny-v2-q4km.gguf", "tiny-v3-q4km.gguf"));

}  // namespace
}  // namespace tandem
