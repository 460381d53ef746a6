// UTF-8 validation / incomplete-tail detection and GPT-2's byte-level alphabet.
#include <gtest/gtest.h>

#include <set>

#include "runtime/tokenizer/byte_level_alphabet.h"
#include "runtime/tokenizer/utf8.h"

namespace tandem {
namespace {

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(utf8_sequence_length("a"), 1u);
  EXPECT_EQ(utf8_sequence_length("\xC3\xA4"), 2u);          // ä
  EXPECT_EQ(utf8_sequence_length("\xE4\xB8\x96"), 3u);      // 世
  EXPECT_EQ(utf8_sequence_length("\xF0\x9F\xA6\x99"), 4u);  // 🦙
  EXPECT_EQ(utf8_sequence_length(""), 0u);
  EXPECT_EQ(utf8_sequence_length("\x80"), 0u);              // lone continuation
  EXPECT_EQ(utf8_sequence_length("\xC0\x80"), 0u);          // overlong NUL
  EXPECT_EQ(utf8_sequence_length("\xE0\x80\x80"), 0u);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xED\xA0\x80"), 0u);      // surrogate D800
  EXPECT_EQ(utf8_sequence_length("\xF4\x90\x80\x80"), 0u);  // > U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(utf8_sequence_length("\xC3"), 0u);              // truncated
  EXPECT_EQ(utf8_sequence_length("\xC3" "a"), 0u);
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("Hello, 世界 🦙 ä"));
  EXPECT_FALSE(is_valid_utf8("abc\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\xA6"));
}

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail_length(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail_length("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail_length("ab\xC3"), 1u);
  EXPECT_EQ(utf8_incomplete_tail_length("ab\xC3\xA4"), 0u);
  EXPECT_EQ(utf8_incomplete_tail_length("\xF0"), 1u);
  EXPECT_EQ(utf8_incomplete_tail_length("\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_incomplete_tail_length("x\xF0\x9F\xA6"), 3u);
  EXPECT_EQ(utf8_incomplete_tail_length("\xF0\x9F\xA6\x99"), 0u);
  // Prefixes that can never complete are not held back.
  EXPECT_EQ(utf8_incomplete_tail_length("\xFF"), 0u);
  EXPECT_EQ(utf8_incomplete_tail_length("\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail_length("\xE0\x80"), 0u);  // overlong from the second byte
  EXPECT_EQ(utf8_incomplete_tail_length("\xED\xA0"), 0u);  // surrogate from the second byte
  EXPECT_EQ(utf8_incomplete_tail_length("\xC3" "a"), 0u);
}

TEST(Utf8, AppendEncodesEveryLength) {
  std::string s;
  append_utf8(s, 0x41);
  append_utf8(s, 0xE4);
  append_utf8(s, 0x4E16);
  append_utf8(s, 0x1F999);
  EXPECT_EQ(s, "A\xC3\xA4\xE4\xB8\x96\xF0\x9F\xA6\x99");
}

TEST(ByteLevelAlphabet, KnownCodePoints) {
  EXPECT_EQ(ByteLevelAlphabet::code_point(' '), 0x120u);  // 'Ġ'
  EXPECT_EQ(ByteLevelAlphabet::code_point('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(ByteLevelAlphabet::code_point('\t'), 0x109u);
  EXPECT_EQ(ByteLevelAlphabet::code_point(0), 0x100u);
  EXPECT_EQ(ByteLevelAlphabet::code_point('A'), uint32_t('A'));
  EXPECT_EQ(ByteLevelAlphabet::code_point(0x7F), 0x121u);
  EXPECT_EQ(ByteLevelAlphabet::code_point(0xAD), 0x143u);  // the last extra code point
  EXPECT_EQ(ByteLevelAlphabet::code_point(0xE4), 0xE4u);
  EXPECT_EQ(ByteLevelAlphabet::text(' '), "Ġ");
}

TEST(ByteLevelAlphabet, IsABijectionOnBytes) {
  std::set<uint32_t> seen;
  std::string all;
  for (int b = 0; b < 256; ++b) {
    seen.insert(ByteLevelAlphabet::code_point(uint8_t(b)));
    all += char(b);
  }
  EXPECT_EQ(seen.size(), 256u);
  const std::string encoded = ByteLevelAlphabet::encode(all);
  EXPECT_TRUE(is_valid_utf8(encoded));
  std::string decoded;
  ByteLevelAlphabet::decode_append(encoded, decoded);
  EXPECT_EQ(decoded, all);
}

TEST(ByteLevelAlphabet, DecodeCopiesForeignCharacters) {
  std::string out;
  ByteLevelAlphabet::decode_append("ĠhiĊ世<|x|>\xFF", out);
  EXPECT_EQ(out, " hi\n世<|x|>\xFF");
}

}  // namespace
}  // namespace tandem
