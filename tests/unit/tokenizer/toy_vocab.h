// A small handmade byte-level BPE vocabulary for tests: the 256 byte tokens (ids 0..255, in
// byte order), a few merges, and special tokens of each kind.
#pragma once

#include <string>
#include <vector>

#include "runtime/tokenizer/bpe_vocab.h"
#include "runtime/tokenizer/byte_level_alphabet.h"

namespace tandem::toy {

// Ids of the tokens after the 256 bytes, in the order toy_vocab() adds them.
enum : TokenId {
  kHe = 256, kLl, kHell, kHello, kSpW, kOr, kSpWor, kLd, kSpWorld,  // merges "hello", " world"
  kAUml,                                                             // "ä" (C3 A4) merged
  kBos, kEos, kImStart, kIm, kTool, kUnused, kByteA,
  kSize
};

inline std::vector<std::string> toy_merges() {
  return {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ã ¤"};
}

inline BpeVocab toy_vocab(bool add_bos = false, bool add_eos = false, std::string pre = "gpt-2") {
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  for (int b = 0; b < 256; ++b) {
    tokens.emplace_back(ByteLevelAlphabet::text(uint8_t(b)));
    types.push_back(TokenType::Normal);
  }
  for (const char* t : {"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "Ã¤"}) {
    tokens.emplace_back(t);
    types.push_back(TokenType::Normal);
  }
  const std::pair<const char*, TokenType> specials[] = {
      {"<s>", TokenType::Control},           {"</s>", TokenType::Control},
      {"<|im_start|>", TokenType::Control},  {"<|im", TokenType::Control},
      {"<tool>", TokenType::UserDefined},    {"[UNUSED]", TokenType::Unused},
      {"<0x41>", TokenType::Byte},
  };
  for (const auto& [text, type] : specials) {
    tokens.emplace_back(text);
    types.push_back(type);
  }
  BpeVocabConfig config;
  config.pre = std::move(pre);
  config.bos = kBos;
  config.eos = kEos;
  config.add_bos = add_bos;
  config.add_eos = add_eos;
  return BpeVocab::build(std::move(tokens), std::move(types), toy_merges(), config);
}

// Token id of a single byte in the toy vocab.
inline TokenId byte_id(char c) { return TokenId(uint8_t(c)); }

}  // namespace tandem::toy
