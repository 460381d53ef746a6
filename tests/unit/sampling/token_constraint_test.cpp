#include "runtime/sampling/token_constraint.h"

#include <gtest/gtest.h>

#include <random>

#include "runtime/sampling/sampler.h"

namespace tandem {
namespace {

using nlohmann::json;

// A vocabulary of every byte, some multi-byte pieces, one added token and a stop token.
std::shared_ptr<const ConstraintVocab> test_vocab(int32_t& stop, int32_t& marker) {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) t.push_back(std::string(1, char(b)));
  for (const char* p : {"{\"", "\":", "\", \"", "true", "null", "12", "ab", " \"", "\"}", "é", "\xc3", "a\"b", "<x>"})
    t.push_back(p);
  std::vector<uint8_t> added(t.size(), 0), excluded(t.size(), 0);
  marker = int32_t(t.size());
  t.push_back("<call>");
  added.push_back(1);
  excluded.push_back(0);
  stop = int32_t(t.size());
  t.push_back("</s>");
  added.push_back(1);
  excluded.push_back(1);
  return std::make_shared<const ConstraintVocab>(t, added, excluded);
}

TEST(TokenConstraint, MaskMatchesByteByByteAcceptance) {
  int32_t stop, marker;
  const auto vocab = test_vocab(stop, marker);
  const auto g = compile_json_schema(json::parse(
      R"({"type":"object","properties":{"a":{"type":"string"},"b":{"type":"boolean"}},"required":["a"],"additionalProperties":false})"));
  TokenConstraint c(vocab, g);
  std::vector<uint8_t> mask;
  std::mt19937 rng(3);
  std::vector<int32_t> stops = {stop};
  for (int step = 0; step < 60; ++step) {
    c.allowed(stops, 0, mask);
    // Oracle: a token is allowed iff its bytes are accepted (added tokens: never here, no literal).
    std::vector<int32_t> ok;
    for (size_t id = 0; id < vocab->size(); ++id) {
      if (int32_t(id) == stop) {
        EXPECT_EQ(mask[id] != 0, c.complete());
        continue;
      }
      JsonAutomaton a = c.automaton();
      const bool fits = int32_t(id) != marker && a.feed(vocab->bytes(int32_t(id)));
      EXPECT_EQ(mask[id] != 0, fits) << "token " << id << " '" << vocab->bytes(int32_t(id)) << "' at step " << step;
      if (fits) ok.push_back(int32_t(id));
    }
    if (ok.empty()) {
      EXPECT_TRUE(c.complete());
      break;
    }
    ASSERT_TRUE(c.accept(ok[rng() % ok.size()]));
  }
}

TEST(TokenConstraint, AddedTokensOnlyMatchLiteralMarkup) {
  int32_t stop, marker;
  const auto vocab = test_vocab(stop, marker);
  auto g = std::make_shared<JsonGrammar>();
  g->root = g->seq({g->literal("<call>"), g->string(), g->literal("<x>")});
  g->finish();
  TokenConstraint c(vocab, g);
  std::vector<uint8_t> mask;
  c.allowed({}, 0, mask);
  EXPECT_TRUE(mask[size_t(marker)]);
  EXPECT_TRUE(mask['<']);
  ASSERT_TRUE(c.accept(marker));
  ASSERT_TRUE(c.accept('"'));
  c.allowed({}, 0, mask);
  EXPECT_FALSE(mask[size_t(marker)]);  // inside the string: not the added token
  EXPECT_TRUE(mask['<']);              // its bytes as plain text are fine
}

// Whatever the logits say, a constrained sampler with a budget ends in a complete document.
TEST(TokenConstraint, RandomLogitsWithinBudgetGiveValidDocuments) {
  int32_t stop, marker;
  const auto vocab = test_vocab(stop, marker);
  const json sch = json::parse(R"({"type":"object","properties":{"n":{"type":"number"},"s":{"type":"string"},
      "e":{"enum":["x","y"]}},"required":["n","s","e"],"additionalProperties":false})");
  const auto g = compile_json_schema(sch);
  std::mt19937 rng(11);
  for (int run = 0; run < 30; ++run) {
    TokenConstraint c(vocab, g);
    SamplerConfig sc;
    sc.temperature = 1.5f;
    sc.top_k = 0;
    sc.top_p = 1.0f;
    sc.min_p = 0.0f;
    sc.seed = uint64_t(run);
    Sampler s(sc);
    std::vector<float> logits(vocab->size());
    std::vector<uint8_t> mask;
    std::string text;
    const int64_t max_tokens = 40 + run;
    int64_t n = 0;
    for (; n < max_tokens; ++n) {
      for (auto& l : logits) l = std::uniform_real_distribution<float>(-5, 5)(rng);
      ASSERT_GT(c.allowed(std::vector<int32_t>{stop}, max_tokens - n, mask), 0u);
      const int32_t id = s.sample(logits, mask);
      if (id == stop) break;
      ASSERT_TRUE(c.accept(id));
      text += vocab->bytes(id);
    }
    json doc;
    ASSERT_NO_THROW(doc = json::parse(text)) << text;
    EXPECT_TRUE(doc["n"].is_number()) << text;
    EXPECT_TRUE(doc["s"].is_string()) << text;
    EXPECT_TRUE(doc["e"] == "x" || doc["e"] == "y") << text;
  }
}

}  // namespace
}  // namespace tandem
