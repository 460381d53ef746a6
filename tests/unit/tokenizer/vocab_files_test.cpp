// Checks the tokenizer against the reference vectors in TANDEM_SHARED_DIR/vocab: for each
// ggml-vocab-NAME.gguf, the .inp file holds texts separated by "\n__ggml_vocab_test__\n" and
// the .out file one line of expected ids per text (tokenized without BOS/EOS, special tokens
// not parsed). Also checks decode(encode(text)) == text for every text.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "runtime/gguf/gguf_file.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem {
namespace {

std::string vocab_dir() { return std::string(TANDEM_SHARED_DIR) + "/vocab"; }

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<std::string> split_texts(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return texts;
}

std::vector<std::vector<TokenId>> read_expected(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<TokenId>> rows;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    std::vector<TokenId> ids;
    TokenId id;
    while (s >> id) ids.push_back(id);
    rows.push_back(std::move(ids));
  }
  return rows;
}

std::string show(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId id : ids) s += " " + std::to_string(id);
  return s;
}

std::string vocab_path(const std::string& name) { return vocab_dir() + "/ggml-vocab-" + name + ".gguf"; }

// Loading a 150k-token vocab takes a moment: each is loaded once for all tests.
const Tokenizer& tokenizer_for(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) slot = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*GgufFile::open(vocab_path(name))));
  return *slot;
}

class VocabFileTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(vocab_path(GetParam()))) GTEST_SKIP() << vocab_path(GetParam()) << " not present";
  }
};

TEST_P(VocabFileTest, MatchesReferenceIds) {
  const std::string base = vocab_path(GetParam());
  const Tokenizer& tok = tokenizer_for(GetParam());
  EXPECT_EQ(tok.pre_tokenizer().name(), GetParam());

  const auto texts = split_texts(read_all(base + ".inp"));
  const auto expected = read_expected(base + ".out");
  ASSERT_EQ(texts.size(), expected.size()) << base;

  size_t passed = 0;
  double seconds = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<TokenId> got = tok.encode(texts[i], /*add_special=*/false, /*parse_special=*/false);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (got == expected[i]) ++passed;
    else ADD_FAILURE() << GetParam() << " text " << i << " '" << texts[i] << "'\n  want" << show(expected[i])
                       << "\n  got " << show(got);
    EXPECT_EQ(tok.decode(got), texts[i]) << GetParam() << " text " << i;
  }
  std::printf("[ vocab    ] %s: %zu/%zu texts match, %.3f ms encoding in all\n", GetParam(), passed,
              texts.size(), seconds * 1e3);
  EXPECT_EQ(passed, texts.size());
}

TEST_P(VocabFileTest, RoundTripsRandomTextAndBytes) {
  const Tokenizer& tok = tokenizer_for(GetParam());
  std::mt19937 rng(3);
  const char* parts[] = {"Hello", " world", "  ", "\n", "\r\n", "\t", "ä", "Ö", "ø", "世界", "🦙", "1234567", "'s",
                         "'LL", "!!", "...", " (x)", "é", "ひらがな", "\xCC\x81", "<|endoftext|>", "<｜end▁of▁sentence｜>"};
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int i = int(rng() % 16); i > 0; --i) text += parts[rng() % std::size(parts)];
    // Special tokens not parsed: their text encodes as plain text and decodes back.
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text);
    // Parsed: they come back when control tokens are rendered.
    EXPECT_EQ(tok.decode(tok.encode(text, false, true), true), text);
  }
  // Arbitrary bytes (malformed UTF-8) round-trip through the byte tokens. DeepSeek vocabs have
  // no normal token for the bytes that never occur in UTF-8 (C0, C1, F5..FF): they exist only as
  // user_defined tokens whose text is the alphabet character ("ø" for F8), which decode as that
  // character. Those bytes are left out here and checked below.
  const BpeVocab& v = tok.vocab();
  std::vector<char> plain_bytes;
  for (int b = 0; b < 256; ++b) {
    const TokenId id = v.byte_token(uint8_t(b));
    ASSERT_NE(id, kNoToken) << "byte " << b;
    if (v.type(id) == TokenType::Normal) plain_bytes.push_back(char(b));
    else EXPECT_EQ(v.type(id), TokenType::UserDefined) << "byte " << b;
  }
  EXPECT_GE(plain_bytes.size(), 243u);
  for (int round = 0; round < 200; ++round) {
    std::string bytes;
    for (int i = int(rng() % 32); i > 0; --i) bytes += plain_bytes[rng() % plain_bytes.size()];
    EXPECT_EQ(tok.decode(tok.encode(bytes, false, false)), bytes);
  }
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, char(b));
    EXPECT_EQ(tok.encode(one, false, false), std::vector<TokenId>{v.byte_token(uint8_t(b))}) << "byte " << b;
  }
}

TEST_P(VocabFileTest, EncodesTwoKilobytesQuickly) {
  const Tokenizer& tok = tokenizer_for(GetParam());
  const std::string text = read_all(vocab_path(GetParam()) + ".inp");  // ~1.9 KB of mixed text
  const int reps = 20;
  size_t tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) tokens += tok.encode(text, true, false).size();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("[ vocab    ] %s: %zu bytes -> %zu tokens in %.3f ms\n", GetParam(), text.size(), tokens / reps, ms);
  EXPECT_LT(ms, 50.0);  // generous: sanitizer builds on a loaded CI machine
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabFileTest,
                         ::testing::Values("deepseek-llm", "deepseek-coder", "qwen2", "llama-bpe"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace tandem
