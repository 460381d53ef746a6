// Streaming detokenization holds back partial UTF-8 characters and never loses a byte.
#include <gtest/gtest.h>

#include <random>

#include "runtime/tokenizer/streaming_detokenizer.h"
#include "tests/unit/tokenizer/toy_vocab.h"

namespace tandem {
namespace {

using namespace toy;

TEST(StreamingDetokenizer, HoldsBackPartialCharacters) {
  const Tokenizer t(toy_vocab());
  StreamingDetokenizer s(t);
  EXPECT_EQ(s.push(kHello), "hello");
  // 🦙 = F0 9F A6 99, one byte token at a time.
  EXPECT_EQ(s.push(0xF0), "");
  EXPECT_EQ(s.push(0x9F), "");
  EXPECT_EQ(s.push(0xA6), "");
  EXPECT_EQ(s.held_bytes(), 3u);
  EXPECT_EQ(s.push(0x99), "🦙");
  EXPECT_EQ(s.held_bytes(), 0u);
  // A token that completes one character and starts the next.
  EXPECT_EQ(s.push(0xC3), "");
  EXPECT_EQ(s.push(kAUml), "\xC3" "ä");  // C3 then "ä": the lone C3 can no longer complete
  EXPECT_EQ(s.push(kSpWorld), " world");
  EXPECT_EQ(s.finish(), "");
}

TEST(StreamingDetokenizer, PassesThroughBytesThatCannotComplete) {
  const Tokenizer t(toy_vocab());
  StreamingDetokenizer s(t);
  EXPECT_EQ(s.push(0xFF), "\xFF");
  EXPECT_EQ(s.push(0xE4), "");
  EXPECT_EQ(s.push(byte_id('a')), "\xE4" "a");
  EXPECT_EQ(s.push(0xE4), "");
  EXPECT_EQ(s.push(0xB8), "");
  EXPECT_EQ(s.finish(), "\xE4\xB8");  // the stream ended inside a character
  EXPECT_EQ(s.held_bytes(), 0u);
}

TEST(StreamingDetokenizer, ControlTokensFollowTheFlag) {
  const Tokenizer t(toy_vocab());
  StreamingDetokenizer hidden(t);
  StreamingDetokenizer shown(t, true);
  EXPECT_EQ(hidden.push(kEos), "");
  EXPECT_EQ(shown.push(kEos), "</s>");
}

TEST(StreamingDetokenizer, ChunksConcatenateToDecode) {
  const Tokenizer t(toy_vocab());
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    std::vector<TokenId> ids;
    for (int i = int(rng() % 16); i > 0; --i) ids.push_back(TokenId(rng() % kSize));
    StreamingDetokenizer s(t);
    std::string streamed;
    for (TokenId id : ids) {
      const std::string chunk = s.push(id);
      streamed += chunk;
    }
    streamed += s.finish();
    EXPECT_EQ(streamed, t.decode(ids));
  }
}

}  // namespace
}  // namespace tandem
