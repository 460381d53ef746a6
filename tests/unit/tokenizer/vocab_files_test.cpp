// Checks the tokenizer against the reference vectors in TANDEM_SHARED_DIR/vocab: for each
// ggml-vocab-NAME.gguf, the .inp file holds texts separated by "\n__ggml_vocab_test__\n" and
// the .out file one line of expected ids per text (tokenized without BOS/EOS, special tokens
// not parsed). Also checks decode(encode(text)) == text for every text.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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

class VocabFileTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabFileTest, MatchesReferenceIds) {
  const std::string base = vocab_dir() + "/ggml-vocab-" + GetParam() + ".gguf";
  if (!std::filesystem::exists(base)) GTEST_SKIP() << base << " not present";
  const auto file = GgufFile::open(base);
  const Tokenizer tok = Tokenizer::from_gguf(*file);
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
