#include "runtime/sampling/token_constraint.h"

#include <algorithm>
#include <numeric>

#include "runtime/core/error.h"

namespace tandem {
namespace {

// Whole, well-formed UTF-8 characters with no byte that means something inside a JSON string.
bool is_plain(std::string_view b) {
  if (b.empty()) return false;
  size_t i = 0;
  while (i < b.size()) {
    const uint8_t c = uint8_t(b[i]);
    size_t more;
    if (c < 0x80) {
      if (c < 0x20 || c == '"' || c == '\\') return false;
      more = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
    } else {
      return false;
    }
    if (i + more >= b.size() && more > 0) return false;
    // The first continuation byte's range excludes overlongs, surrogates and > U+10FFFF.
    const uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (size_t k = 1; k <= more; ++k) {
      const uint8_t x = uint8_t(b[i + k]);
      if (k == 1 ? (x < lo || x > hi) : (x & 0xC0) != 0x80) return false;
    }
    i += more + 1;
  }
  return true;
}

// Tokens this close to running out of budget switch the mask to closing the document.
constexpr size_t kClosingSlack = 8;

}  // namespace

ConstraintVocab::ConstraintVocab(std::vector<std::string> token_bytes, std::vector<uint8_t> added,
                                 std::vector<uint8_t> excluded)
    : bytes_(std::move(token_bytes)) {
  if (added.size() != bytes_.size() || excluded.size() != bytes_.size())
    fail("ConstraintVocab: ", bytes_.size(), " tokens but ", added.size(), " added and ", excluded.size(),
         " excluded flags");
  std::vector<int32_t> ordinary, special;
  for (size_t i = 0; i < bytes_.size(); ++i) {
    if (excluded[i] || bytes_[i].empty()) continue;
    const int32_t id = int32_t(i);
    if (added[i]) {
      added_.push_back(id);
    } else {
      ordinary.push_back(id);
      if (is_plain(bytes_[i]))
        plain_.push_back(id);
      else
        special.push_back(id);
    }
  }
  all_ = build_trie(bytes_, std::move(ordinary));
  special_ = build_trie(bytes_, std::move(special));
}

ConstraintVocab::Trie ConstraintVocab::build_trie(const std::vector<std::string>& bytes, std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return bytes[size_t(a)] < bytes[size_t(b)]; });
  Trie t;
  t.token_ids = ids;
  t.nodes.push_back({});
  // Breadth-first: each node covers a sorted range of tokens sharing its prefix of length depth;
  // its children are laid out together.
  struct Pending {
    uint32_t node;
    size_t lo, hi, depth;
  };
  std::vector<Pending> queue = {{0, 0, ids.size(), 0}};
  for (size_t q = 0; q < queue.size(); ++q) {
    const Pending p = queue[q];
    size_t i = p.lo;
    // Tokens that end at this depth sort first within the range.
    while (i < p.hi && bytes[size_t(ids[i])].size() == p.depth) ++i;
    t.nodes[p.node].token_begin = uint32_t(p.lo);
    t.nodes[p.node].token_end = uint32_t(i);
    t.nodes[p.node].child_begin = uint32_t(t.nodes.size());
    while (i < p.hi) {
      const uint8_t b = uint8_t(bytes[size_t(ids[i])][p.depth]);
      size_t j = i;
      while (j < p.hi && uint8_t(bytes[size_t(ids[j])][p.depth]) == b) ++j;
      TrieNode child;
      child.byte = b;
      t.nodes.push_back(child);
      queue.push_back({uint32_t(t.nodes.size() - 1), i, j, p.depth + 1});
      i = j;
    }
    t.nodes[p.node].child_end = uint32_t(t.nodes.size());
  }
  return t;
}

TokenConstraint::TokenConstraint(std::shared_ptr<const ConstraintVocab> vocab, std::shared_ptr<const JsonGrammar> grammar)
    : vocab_(std::move(vocab)), automaton_(std::move(grammar)) {}

void TokenConstraint::mark(int32_t token, const Level& level) {
  uint8_t& m = (*mask_)[size_t(token)];
  if (m) return;
  if (closing_) {
    size_t d = SIZE_MAX;
    for (size_t i = 0; i < level.n; ++i) d = std::min(d, automaton_.stack_distance(level.stacks[i]));
    if (d > limit_) {
      best_ = std::min(best_, d);
      over_.emplace_back(token, d);
      return;
    }
  }
  m = 1;
  ++count_;
}

void TokenConstraint::walk(const ConstraintVocab::Trie& trie, uint32_t node, size_t depth) {
  if (levels_.size() < depth + 2) levels_.resize(depth + 2);
  const ConstraintVocab::TrieNode& n = trie.nodes[node];
  for (uint32_t c = n.child_begin; c < n.child_end; ++c) {
    const ConstraintVocab::TrieNode& child = trie.nodes[c];
    const Level& cur = levels_[depth];
    Level& next = levels_[depth + 1];
    next.n = 0;
    for (size_t i = 0; i < cur.n; ++i) automaton_.advance(cur.stacks[i], child.byte, next.stacks, next.n);
    if (next.n == 0) continue;
    for (uint32_t t = child.token_begin; t < child.token_end; ++t) mark(trie.token_ids[t], next);
    if (child.child_begin < child.child_end) walk(trie, c, depth + 1);
  }
}

size_t TokenConstraint::allowed(std::span<const int32_t> stop_tokens, int64_t budget, std::vector<uint8_t>& mask) {
  mask.assign(vocab_->size(), 0);
  mask_ = &mask;
  count_ = 0;
  over_.clear();
  best_ = SIZE_MAX;
  if (automaton_.dead()) return 0;
  const size_t now = automaton_.distance();
  closing_ = budget > 0 && size_t(budget) <= now + kClosingSlack;
  limit_ = closing_ ? size_t(budget - 1) : SIZE_MAX;

  Level& root = levels_.empty() ? levels_.emplace_back() : levels_[0];
  root.stacks = automaton_.stacks();
  root.n = root.stacks.size();

  if (automaton_.in_plain_string()) {
    // Plain text leaves a string's distance as it is.
    if (!closing_ || now <= limit_) {
      for (int32_t id : vocab_->plain())
        if (!mask[size_t(id)]) {
          mask[size_t(id)] = 1;
          ++count_;
        }
    } else {
      best_ = std::min(best_, now);
      for (int32_t id : vocab_->plain()) over_.emplace_back(id, now);
    }
    walk(vocab_->special(), 0, 0);
  } else {
    walk(vocab_->all(), 0, 0);
    // Added tokens only where every reading expects literal markup.
    if (automaton_.expects_literal()) {
      for (int32_t id : vocab_->added()) {
        JsonAutomaton probe = automaton_;
        if (probe.feed(vocab_->bytes(id))) {
          Level l;
          l.stacks = probe.stacks();
          l.n = l.stacks.size();
          mark(id, l);
        }
      }
    }
  }
  if (automaton_.complete()) {
    for (int32_t id : stop_tokens)
      if (id >= 0 && size_t(id) < mask.size() && !mask[size_t(id)]) {
        mask[size_t(id)] = 1;
        ++count_;
      }
  }
  if (count_ == 0 && !over_.empty()) {
    // Nothing closes the document within the budget: take the tokens that come closest.
    for (const auto& [id, d] : over_)
      if (d == best_ && !mask[size_t(id)]) {
        mask[size_t(id)] = 1;
        ++count_;
      }
  }
  mask_ = nullptr;
  return count_;
}

bool TokenConstraint::accept(int32_t token) {
  if (token < 0 || size_t(token) >= vocab_->size()) return false;
  return automaton_.feed(vocab_->bytes(token));
}

}  // namespace tandem
