// Finds the texts of control, unknown and user_defined tokens in raw text before pre-tokenizing,
// leftmost-longest (as Hugging Face's added-token matcher does). User_defined tokens are always
// matched; control and unknown ones only when the caller asks to parse special tokens (so that
// user text cannot forge "<|end_of_text|>").
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/bpe_vocab.h"

namespace tandem {

class SpecialTokenMatcher {
 public:
  explicit SpecialTokenMatcher(const BpeVocab& vocab);

  // A piece of the input: either plain text to pre-tokenize, or one matched token.
  struct Segment {
    std::string_view text;  // the covered input bytes
    TokenId token;          // kNoToken for plain text
  };
  std::vector<Segment> split(std::string_view text, bool parse_special) const;
  size_t pattern_count() const { return patterns_; }

 private:
  // A byte trie; node 0 is the root. Children are kept sorted by byte in one flat array.
  struct Node {
    uint32_t first_child = 0;
    uint16_t child_count = 0;
    TokenId token = kNoToken;
    bool always = false;  // user_defined: matched even when not parsing special tokens
  };
  struct Edge {
    uint8_t byte;
    uint32_t node;
  };
  // Longest token starting at text[0]; returns its length (0 if none) and sets token.
  size_t longest_at(std::string_view text, bool parse_special, TokenId& token) const;

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  bool first_byte_[256] = {};
  size_t patterns_ = 0;
};

}  // namespace tandem
