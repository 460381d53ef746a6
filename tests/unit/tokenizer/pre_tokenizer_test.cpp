// Pre-tokenizer regex sequences: expected splits for each model family, exact coverage of the
// input, malformed UTF-8, and errors for unknown names and bad regexes.
#include <gtest/gtest.h>

#include <random>

#include "runtime/core/error.h"
#include "runtime/tokenizer/pre_tokenizer.h"

namespace tandem {
namespace {

std::vector<std::string> pieces(const std::string& pre, std::string_view text) {
  const PreTokenizer p = PreTokenizer::for_name(pre);
  std::vector<std::string> out;
  for (auto v : p.split(text)) out.emplace_back(v);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(pieces("gpt-2", "Hello world, it's 2024!"),
            (Pieces{"Hello", " world", ",", " it", "'s", " 2024", "!"}));
  // \s+(?!\S) leaves the last space to join the next word.
  EXPECT_EQ(pieces("gpt-2", "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(pieces("gpt-2", ""), Pieces{});
}

TEST(PreTokenizer, Llama3DigitsInThrees) {
  EXPECT_EQ(pieces("llama-bpe", "1234567 abc"), (Pieces{"123", "456", "7", " abc"}));
  EXPECT_EQ(pieces("llama-bpe", "I'M here\n\n  x"), (Pieces{"I", "'M", " here", "\n\n", " ", " x"}));
  EXPECT_TRUE(PreTokenizer::for_name("llama-bpe").ignores_merges());
  EXPECT_FALSE(PreTokenizer::for_name("qwen2").ignores_merges());
}

TEST(PreTokenizer, Qwen2DigitsAlone) {
  EXPECT_EQ(pieces("qwen2", "x=123"), (Pieces{"x", "=", "1", "2", "3"}));
}

TEST(PreTokenizer, DeepseekCoderSequence) {
  // Newlines isolated first, then letters, punctuation, CJK runs, then single digits.
  EXPECT_EQ(pieces("deepseek-coder", "int x=42;\n世界"),
            (Pieces{"int", " x", "=", "4", "2", ";", "\n", "世界"}));
}

TEST(PreTokenizer, DeepseekLlmSequence) {
  EXPECT_EQ(pieces("deepseek-llm", "Hello 123 世界!\n  "),
            (Pieces{"Hello", " ", "123", " ", "世界", "!", "\n", "  "}));
  // Compatibility letters in the hand-written ranges: KELVIN SIGN and OHM SIGN are letters.
  EXPECT_EQ(pieces("deepseek-llm", "\xE2\x84\xAA\xE2\x84\xA6"), (Pieces{"\xE2\x84\xAA\xE2\x84\xA6"}));
}

TEST(PreTokenizer, DeepseekV3Sequence) {
  EXPECT_EQ(pieces("deepseek-v3", "12345"), (Pieces{"123", "45"}));
  EXPECT_EQ(pieces("deepseek-v3", "ひらがな漢字"), (Pieces{"ひらがな漢字"}));
  // An ASCII punctuation mark leads a run of ASCII letters.
  EXPECT_EQ(pieces("deepseek-v3", "a.b_cd e"), (Pieces{"a", ".b", "_cd", " e"}));
}

TEST(PreTokenizer, PiecesCoverInputExactly) {
  std::mt19937 rng(7);
  const char* alphabet[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "1", "42", "'s", "!", "...", "é", "世", "🦙",
                            "\xFF", "\xC3", "\x80", "ä", "K", "\xE2\x84\xAA", ",", "_", "ひ"};
  for (const auto& name : PreTokenizer::known_names()) {
    const PreTokenizer p = PreTokenizer::for_name(name);
    for (int round = 0; round < 200; ++round) {
      std::string text;
      const int n = int(rng() % 20);
      for (int i = 0; i < n; ++i) text += alphabet[rng() % std::size(alphabet)];
      std::string joined;
      for (auto piece : p.split(text)) {
        EXPECT_FALSE(piece.empty()) << name;
        joined += piece;
      }
      EXPECT_EQ(joined, text) << name;
    }
  }
}

TEST(PreTokenizer, MalformedBytesStandAlone) {
  EXPECT_EQ(pieces("qwen2", "ab\xFF" "cd\xC3"), (Pieces{"ab", "\xFF", "cd", "\xC3"}));
  EXPECT_EQ(pieces("deepseek-llm", "\x80\x80"), (Pieces{"\x80", "\x80"}));
}

TEST(PreTokenizer, LongWhitespaceRunsDoNotFail) {
  const std::string spaces(200000, ' ');
  const std::string text = "a" + spaces + "b";
  std::string joined;
  for (auto piece : PreTokenizer::for_name("llama-bpe").split(text)) joined += piece;
  EXPECT_EQ(joined, text);
}

TEST(PreTokenizer, UnknownNameIsAnErrorNamingIt) {
  try {
    PreTokenizer::for_name("mystery-pre");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mystery-pre"), std::string::npos) << e.what();
  }
}

TEST(PreTokenizer, BadRegexIsAnError) {
  EXPECT_THROW(PreTokenizer("custom", {"[unclosed"}), Error);
  const PreTokenizer words("custom", {R"(\p{L}+)"});
  std::vector<std::string> got;
  for (auto v : words.split("ab, cd")) got.emplace_back(v);
  EXPECT_EQ(got, (Pieces{"ab", ", ", "cd"}));
}

}  // namespace
}  // namespace tandem
