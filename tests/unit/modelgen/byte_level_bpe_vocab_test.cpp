// The built-in vocabulary: well-formed, deterministic, and usable by a byte-level BPE tokenizer.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "runtime/core/error.h"
#include "tools/modelgen/byte_level_bpe_vocab.h"

namespace tandem::modelgen {
namespace {

TEST(ByteLevelBpeVocab, LayoutAndSpecials) {
  const ByteLevelBpeVocab v = build_byte_level_bpe_vocab(1024);
  ASSERT_EQ(v.tokens.size(), 1024u);
  ASSERT_EQ(v.token_types.size(), 1024u);
  EXPECT_EQ(v.tokens[0], "!");
  EXPECT_EQ(v.tokens[1], "\"");
  // The 256 byte symbols, then merges, then the specials.
  std::set<std::string> unique(v.tokens.begin(), v.tokens.end());
  EXPECT_EQ(unique.size(), v.tokens.size());
  EXPECT_EQ(v.tokens[v.bos], "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(v.tokens[v.eos], "<｜end▁of▁sentence｜>");
  EXPECT_EQ(v.token_types[v.bos], 3);
  EXPECT_EQ(v.token_types[v.eos], 3);
  EXPECT_EQ(v.tokens[v.eos + 1], "<｜User｜>");
  EXPECT_EQ(v.token_types[v.eos + 1], 4);
  EXPECT_EQ(v.bos, 256 + std::set<std::string>(v.tokens.begin() + 256, v.tokens.begin() + v.bos).size());
  EXPECT_GT(v.merges.size(), 500u);  // 1024 - 260 tokens: the sample has that many merges
  for (uint32_t i = 0; i < v.bos; ++i) EXPECT_EQ(v.token_types[i], 1) << i;
}

TEST(ByteLevelBpeVocab, EveryMergeJoinsTwoTokensIntoAThird) {
  const ByteLevelBpeVocab v = build_byte_level_bpe_vocab(800);
  std::map<std::string, size_t> id;
  for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = i;
  for (const auto& m : v.merges) {
    const auto space = m.find(' ');
    ASSERT_NE(space, std::string::npos) << m;
    ASSERT_EQ(m.find(' ', space + 1), std::string::npos) << m;
    const std::string a = m.substr(0, space), b = m.substr(space + 1);
    ASSERT_TRUE(id.count(a)) << m;
    ASSERT_TRUE(id.count(b)) << m;
    ASSERT_TRUE(id.count(a + b)) << m;
    // A merge only uses tokens that exist before its result does.
    EXPECT_LT(id[a], id[a + b]) << m;
    EXPECT_LT(id[b], id[a + b]) << m;
  }
  // Common English and Chinese pieces are learned ("Ġthe" is " the" in the byte alphabet).
  EXPECT_TRUE(id.count("Ġthe"));
  EXPECT_TRUE(id.count("the") || id.count("Ġthe"));
}

TEST(ByteLevelBpeVocab, LargeSizesArePaddedWithPlaceholders) {
  const ByteLevelBpeVocab v = build_byte_level_bpe_vocab(20000);
  ASSERT_EQ(v.tokens.size(), 20000u);
  EXPECT_EQ(v.tokens.back().rfind("<｜place▁holder▁no▁", 0), 0u) << v.tokens.back();
  EXPECT_EQ(v.token_types.back(), 3);
  EXPECT_LT(v.bos, 20000u);
}

TEST(ByteLevelBpeVocab, DeterministicAndPrefixStable) {
  const auto a = build_byte_level_bpe_vocab(700);
  const auto b = build_byte_level_bpe_vocab(700);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  const auto c = build_byte_level_bpe_vocab(900);
  ASSERT_GE(c.merges.size(), a.merges.size());
  for (size_t i = 0; i < a.merges.size(); ++i) EXPECT_EQ(a.merges[i], c.merges[i]);
}

TEST(ByteLevelBpeVocab, TooSmallIsAnError) { EXPECT_THROW(build_byte_level_bpe_vocab(100), Error); }

TEST(ByteLevelBpeVocab, ChatTemplateUsesTheSpecials) {
  const std::string& t = deepseek_chat_template();
  EXPECT_NE(t.find("<｜User｜>"), std::string::npos);
  EXPECT_NE(t.find("<｜Assistant｜>"), std::string::npos);
  EXPECT_NE(t.find("bos_token"), std::string::npos);
  EXPECT_NE(t.find("add_generation_prompt"), std::string::npos);
}

}  // namespace
}  // namespace tandem::modelgen
