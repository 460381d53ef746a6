// Byte-level BPE encode/decode on the handmade toy vocabulary: merge order, special tokens,
// BOS/EOS, decoding flags, malformed UTF-8, round trips, and loading from an in-memory GGUF.
#include <gtest/gtest.h>

#include <random>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/toy_vocab.h"

namespace tandem {
namespace {

using Ids = std::vector<TokenId>;
using namespace toy;

Tokenizer toy_tokenizer(bool add_bos = false, bool add_eos = false) {
  return Tokenizer(toy_vocab(add_bos, add_eos));
}

TEST(BpeVocab, BuildsLookupsAndMerges) {
  const BpeVocab v = toy_vocab();
  EXPECT_EQ(v.size(), size_t(kSize));
  EXPECT_EQ(v.find("hello"), kHello);
  EXPECT_EQ(v.find("nope"), kNoToken);
  EXPECT_EQ(v.byte_token(' '), TokenId(' '));
  ASSERT_NE(v.find_merge(v.find("h"), v.find("e")), nullptr);
  EXPECT_EQ(v.find_merge(v.find("h"), v.find("e"))->result, kHe);
  EXPECT_EQ(v.find_merge(v.find("h"), v.find("e"))->rank, 0);
  EXPECT_EQ(v.find_merge(v.find("e"), v.find("h")), nullptr);
  EXPECT_EQ(v.merge_count(), toy_merges().size());
}

TEST(BpeVocab, RejectsBadInput) {
  std::vector<std::string> tokens = {"a", "b", "ab"};
  EXPECT_THROW(BpeVocab::build(tokens, {}, {"ab"}, {}), Error);  // no separator
  try {
    BpeVocab::build(tokens, {}, {"a b", "a"}, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("merges[1]"), std::string::npos) << e.what();
  }
  BpeVocabConfig bad_bos;
  bad_bos.bos = 7;
  EXPECT_THROW(BpeVocab::build(tokens, {}, {"a b"}, bad_bos), Error);
  EXPECT_THROW(BpeVocab::build(tokens, {TokenType::Normal}, {"a b"}, {}), Error);  // type count
  EXPECT_THROW(BpeVocab::build({}, {}, {}, {}), Error);
  // A merge whose parts are not tokens is skipped, not fatal.
  const BpeVocab v = BpeVocab::build(tokens, {}, {"a b", "x y"}, {});
  EXPECT_EQ(v.merge_count(), 1u);
  EXPECT_EQ(v.skipped_merges(), 1u);
}

TEST(Tokenizer, MergesWholeWords) {
  const Tokenizer t = toy_tokenizer();
  EXPECT_EQ(t.encode("hello world", false, false), (Ids{kHello, kSpWorld}));
  EXPECT_EQ(t.encode("hell", false, false), (Ids{kHell}));
  EXPECT_EQ(t.encode("help", false, false), (Ids{kHe, byte_id('l'), byte_id('p')}));
  EXPECT_EQ(t.encode("", false, false), Ids{});
  // ä is two bytes merged into one token; without a merge a character stays as byte tokens.
  EXPECT_EQ(t.encode("ä", false, false), (Ids{kAUml}));
  EXPECT_EQ(t.encode("ö", false, false), (Ids{0xC3, 0xB6}));
}

TEST(Tokenizer, LowerRankMergesFirst) {
  std::vector<std::string> tokens = {"a", "b", "c", "ab", "bc"};
  auto encode = [&](std::vector<std::string> merges) {
    BpeVocabConfig c;
    c.pre = "gpt-2";
    return Tokenizer(BpeVocab::build(tokens, {}, merges, c)).encode("abc", false, false);
  };
  EXPECT_EQ(encode({"b c", "a b"}), (Ids{0, 4}));
  EXPECT_EQ(encode({"a b", "b c"}), (Ids{3, 2}));
}

TEST(Tokenizer, EqualRanksMergeLeftmostFirst) {
  std::vector<std::string> tokens = {"a", "aa", "aaaa"};
  BpeVocabConfig c;
  c.pre = "gpt-2";
  const Tokenizer t(BpeVocab::build(tokens, {}, {"a a", "aa aa"}, c));
  EXPECT_EQ(t.encode("aaa", false, false), (Ids{1, 0}));
  EXPECT_EQ(t.encode("aaaaa", false, false), (Ids{2, 0}));
  EXPECT_EQ(t.encode("aaaaaa", false, false), (Ids{2, 1}));
}

TEST(Tokenizer, BosEosFollowTheVocabFlags) {
  EXPECT_EQ(toy_tokenizer(true, false).encode("hello", true, false), (Ids{kBos, kHello}));
  EXPECT_EQ(toy_tokenizer(true, true).encode("hello", true, false), (Ids{kBos, kHello, kEos}));
  EXPECT_EQ(toy_tokenizer(true, true).encode("hello", false, false), (Ids{kHello}));
  EXPECT_EQ(toy_tokenizer(false, false).encode("hello", true, false), (Ids{kHello}));
}

TEST(Tokenizer, SpecialTokensOnlyWhenParsed) {
  const Tokenizer t = toy_tokenizer();
  EXPECT_EQ(t.encode("<s>hello</s>", false, true), (Ids{kBos, kHello, kEos}));
  const Ids plain = t.encode("<s>", false, false);
  EXPECT_EQ(plain, (Ids{byte_id('<'), byte_id('s'), byte_id('>')}));
  // Longest match wins over a prefix that is itself a token.
  EXPECT_EQ(t.encode("<|im_start|>hello", false, true), (Ids{kImStart, kHello}));
  EXPECT_EQ(t.encode("<|imhello", false, true), (Ids{kIm, kHello}));
  // User-defined tokens are matched even when special tokens are not parsed.
  EXPECT_EQ(t.encode("hello<tool>", false, false), (Ids{kHello, kTool}));
  // Unused tokens are never matched from text.
  EXPECT_EQ(t.encode("[UNUSED]", false, true).size(), 8u);
}

TEST(Tokenizer, DecodeFlags) {
  const Tokenizer t = toy_tokenizer();
  const Ids ids = {kBos, kHello, kSpWorld, kTool, kUnused, kByteA, kAUml, kEos};
  EXPECT_EQ(t.decode(ids), "hello world<tool>Aä");
  EXPECT_EQ(t.decode(ids, true), "<s>hello world<tool>Aä</s>");
  EXPECT_EQ(t.piece(byte_id(' ')), " ");
  EXPECT_EQ(t.piece(byte_id('\n')), "\n");
  try {
    t.decode(Ids{kSize});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(kSize)), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.decode(Ids{-5}), Error);
}

TEST(Tokenizer, MalformedUtf8EncodesAsBytesAndRoundTrips) {
  const Tokenizer t = toy_tokenizer();
  const std::string bad = "he\xFF\xFEllo \xC3 w\x80orld\xF0\x9F";
  const Ids ids = t.encode(bad, false, false);
  EXPECT_EQ(t.decode(ids), bad);
  EXPECT_EQ(t.encode("\xC3", false, false), (Ids{0xC3}));
}

TEST(Tokenizer, RoundTripsRandomText) {
  const Tokenizer t = toy_tokenizer();
  std::mt19937 rng(11);
  const char* parts[] = {"hello", " world", " ", "\n", "ä", "ö", "世界", "🦙", "123", "'s", "!", "\t", "<tool>",
                         "h", "e", "l", "o"};
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int i = int(rng() % 12); i > 0; --i) text += parts[rng() % std::size(parts)];
    EXPECT_EQ(t.decode(t.encode(text, false, false)), text);
    EXPECT_EQ(t.decode(t.encode(text, true, true)), text);  // control tokens render as nothing
  }
  // Arbitrary bytes, malformed UTF-8 included.
  for (int round = 0; round < 300; ++round) {
    std::string bytes;
    for (int i = int(rng() % 24); i > 0; --i) bytes += char(rng() & 0xFF);
    EXPECT_EQ(t.decode(t.encode(bytes, false, false)), bytes);
  }
}

TEST(Tokenizer, LoadsFromGguf) {
  const BpeVocab toy = toy_vocab();
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (size_t i = 0; i < toy.size(); ++i) {
    tokens.push_back(toy.text(TokenId(i)));
    types.push_back(int32_t(toy.type(TokenId(i))));
  }
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string("qwen2"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::i32_array(types));
  w.set("tokenizer.ggml.merges", GgufValue::string_array(toy_merges()));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(uint32_t(kBos)));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(uint32_t(kEos)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const auto file = GgufFile::parse(bytes.data(), bytes.size(), "toy.gguf");
  const Tokenizer t = Tokenizer::from_gguf(*file);
  EXPECT_EQ(t.pre_tokenizer().name(), "qwen2");
  EXPECT_EQ(t.encode("hello world", true, false), (Ids{kBos, kHello, kSpWorld}));
  EXPECT_EQ(t.vocab().type(kTool), TokenType::UserDefined);

  // Unsupported model and pre-tokenizer names are errors that name them.
  auto error_of = [&](const char* key, const char* value) {
    GgufWriter bad = w;
    bad.set(key, GgufValue::string(value));
    const std::vector<uint8_t> b = bad.to_bytes();
    try {
      Tokenizer::from_gguf(*GgufFile::parse(b.data(), b.size(), "bad.gguf"));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("tokenizer.ggml.model", "llama").find("'llama'"), std::string::npos);
  EXPECT_NE(error_of("tokenizer.ggml.pre", "klingon").find("'klingon'"), std::string::npos);
  // A special id outside the vocabulary names its key.
  GgufWriter bad_bos = w;
  bad_bos.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1000000));
  const std::vector<uint8_t> b = bad_bos.to_bytes();
  try {
    Tokenizer::from_gguf(*GgufFile::parse(b.data(), b.size(), "bad.gguf"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token_id"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem
