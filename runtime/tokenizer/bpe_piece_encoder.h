// Byte-level BPE on one pre-tokenized piece: start from one symbol per byte, then repeatedly
// merge the adjacent pair of lowest merge rank (leftmost first on ties) until none applies.
// A min-heap of candidate pairs keeps this O(n log n) in the piece length; stale candidates
// (a side already merged away) are recognised and dropped when popped.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/bpe_vocab.h"

namespace tandem {

class BpePieceEncoder {
 public:
  explicit BpePieceEncoder(const BpeVocab& vocab) : vocab_(vocab) {}

  // Appends the tokens of raw (bytes, any values). With ignore_merges, a piece whose alphabet
  // text is itself a token is emitted whole. A byte with no token in the vocab becomes the
  // unknown token, or is dropped when there is none.
  void encode(std::string_view raw, bool ignore_merges, std::vector<TokenId>& out);

 private:
  struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;  // -1 at the ends; a merged-away symbol has id == kDead
  };
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t right;
    TokenId left_id;
    TokenId right_id;
    TokenId result;
  };
  static constexpr TokenId kDead = -2;
  void push_candidate(int32_t left, int32_t right);

  const BpeVocab& vocab_;
  std::vector<Symbol> symbols_;     // scratch, reused between pieces
  std::vector<Candidate> heap_;     // scratch
  std::string alphabet_text_;       // scratch for ignore_merges
};

}  // namespace tandem
