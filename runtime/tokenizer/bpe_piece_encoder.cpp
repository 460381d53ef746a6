#include "runtime/tokenizer/bpe_piece_encoder.h"

#include <algorithm>

#include "runtime/tokenizer/byte_level_alphabet.h"

namespace tandem {

namespace {

// std heap functions build a max-heap; "greater" puts the lowest rank, then leftmost, on top.
bool later(const auto& a, const auto& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
}

}  // namespace

void BpePieceEncoder::push_candidate(int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const TokenId l = symbols_[size_t(left)].id;
  const TokenId r = symbols_[size_t(right)].id;
  if (l < 0 || r < 0) return;
  const BpeVocab::Merge* m = vocab_.find_merge(l, r);
  if (!m) return;
  heap_.push_back(Candidate{m->rank, left, right, l, r, m->result});
  std::push_heap(heap_.begin(), heap_.end(), [](const Candidate& a, const Candidate& b) { return later(a, b); });
}

void BpePieceEncoder::encode(std::string_view raw, bool ignore_merges, std::vector<TokenId>& out) {
  if (raw.empty()) return;
  if (ignore_merges) {
    alphabet_text_.clear();
    ByteLevelAlphabet::encode_append(raw, alphabet_text_);
    const TokenId whole = vocab_.find(alphabet_text_);
    if (whole != kNoToken) {
      out.push_back(whole);
      return;
    }
  }
  if (raw.size() == 1) {  // the common case of a lone byte needs no merging
    const TokenId id = vocab_.byte_token(uint8_t(raw[0]));
    if (id != kNoToken) out.push_back(id);
    else if (vocab_.unk() != kNoToken) out.push_back(vocab_.unk());
    return;
  }

  const int32_t n = int32_t(raw.size());
  symbols_.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i)
    symbols_[size_t(i)] = Symbol{vocab_.byte_token(uint8_t(raw[size_t(i)])), i - 1, i + 1 < n ? i + 1 : -1};
  heap_.clear();
  for (int32_t i = 0; i + 1 < n; ++i) push_candidate(i, i + 1);

  const auto cmp = [](const Candidate& a, const Candidate& b) { return later(a, b); };
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), cmp);
    const Candidate c = heap_.back();
    heap_.pop_back();
    Symbol& left = symbols_[size_t(c.left)];
    Symbol& right = symbols_[size_t(c.right)];
    // Stale when either side changed since the candidate was pushed.
    if (left.id != c.left_id || right.id != c.right_id || left.next != c.right) continue;
    left.id = c.result;
    left.next = right.next;
    if (right.next >= 0) symbols_[size_t(right.next)].prev = c.left;
    right.id = kDead;
    right.next = -1;
    push_candidate(left.prev, c.left);
    push_candidate(c.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols_[size_t(i)].next) {
    const TokenId id = symbols_[size_t(i)].id;
    if (id >= 0) out.push_back(id);
    else if (vocab_.unk() != kNoToken) out.push_back(vocab_.unk());
  }
}

}  // namespace tandem
