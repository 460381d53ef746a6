// Constrained sampling: which tokens of the vocabulary may come next so that the reply stays a
// prefix of a JsonGrammar document. The vocabulary's tokens (as bytes) sit in a byte trie that
// is walked together with the automaton: a subtree is dropped at the first byte the automaton
// refuses, so outside strings only a few hundred nodes are visited. Inside a plain string
// almost every token fits; those ("plain" tokens: no quote, backslash or control byte, whole
// UTF-8 characters) are allowed from a precomputed list, and only the others are walked.
// Added tokens (user-defined and control ones, e.g. <｜tool▁calls▁begin｜>) are allowed only where
// the grammar expects literal markup, never inside JSON strings. Stop tokens are allowed only
// where the document is complete.
//
// With a token budget (max_tokens, the context), the mask also closes the document in time:
// once the budget gets near the bytes still needed (JsonAutomaton::distance), only tokens that
// leave it completable within the tokens that remain are allowed.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/sampling/json_automaton.h"

namespace tandem {

// The vocabulary as constrained sampling sees it; built once per model.
class ConstraintVocab {
 public:
  // token_bytes[i]: the bytes token i decodes to; added[i]: it is a user-defined or control
  // token (matched only against literal markup); excluded[i]: never allowed (stop tokens are
  // allowed separately, unused tokens never).
  ConstraintVocab(std::vector<std::string> token_bytes, std::vector<uint8_t> added, std::vector<uint8_t> excluded);

  size_t size() const { return bytes_.size(); }
  const std::string& bytes(int32_t id) const { return bytes_[size_t(id)]; }

  struct TrieNode {
    uint8_t byte = 0;
    uint32_t child_begin = 0, child_end = 0;  // children: nodes_[child_begin, child_end)
    uint32_t token_begin = 0, token_end = 0;  // tokens ending here: token_ids_[...]
  };
  struct Trie {
    std::vector<TrieNode> nodes;  // nodes[0]: the root (the empty prefix)
    std::vector<int32_t> token_ids;
  };
  const Trie& all() const { return all_; }        // every ordinary token
  const Trie& special() const { return special_; }  // ordinary tokens that are not plain
  const std::vector<int32_t>& plain() const { return plain_; }
  const std::vector<int32_t>& added() const { return added_; }

 private:
  static Trie build_trie(const std::vector<std::string>& bytes, std::vector<int32_t> ids);

  std::vector<std::string> bytes_;
  Trie all_, special_;
  std::vector<int32_t> plain_, added_;
};

class TokenConstraint {
 public:
  TokenConstraint(std::shared_ptr<const ConstraintVocab> vocab, std::shared_ptr<const JsonGrammar> grammar);

  // mask (resized to the vocabulary): 1 where a token may come next. stop_tokens are allowed
  // where the document is complete. budget: tokens that may still be generated, this one
  // included (<= 0: no limit). Returns how many tokens are allowed.
  size_t allowed(std::span<const int32_t> stop_tokens, int64_t budget, std::vector<uint8_t>& mask);
  // Advances over a chosen token; false when it does not fit (the state is then dead).
  bool accept(int32_t token);
  bool complete() const { return automaton_.complete(); }
  bool closed() const { return automaton_.closed(); }
  const JsonAutomaton& automaton() const { return automaton_; }

 private:
  struct Level {
    std::vector<AutomatonStack> stacks;
    size_t n = 0;
  };
  void walk(const ConstraintVocab::Trie& trie, uint32_t node, size_t depth);
  void mark(int32_t token, const Level& level);

  std::shared_ptr<const ConstraintVocab> vocab_;
  JsonAutomaton automaton_;
  std::vector<Level> levels_;
  std::vector<uint8_t>* mask_ = nullptr;
  // Closing the document: tokens are kept only when they leave at most limit_ bytes to go.
  bool closing_ = false;
  size_t limit_ = 0;
  size_t best_ = SIZE_MAX;             // the least distance seen (fallback when none fits)
  std::vector<std::pair<int32_t, size_t>> over_;  // tokens that fit the grammar but not the budget
  size_t count_ = 0;
};

}  // namespace tandem
