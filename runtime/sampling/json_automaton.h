// A byte-at-a-time recognizer of a JsonGrammar: a pushdown automaton with one stack per way
// the text read so far can still be parsed (a Choice whose alternatives start alike keeps
// several). feed() says whether bytes keep the text a prefix of some document of the grammar;
// every prefix it accepts can be completed (the grammar has no dead ends), so a sampler that
// only picks accepted bytes always ends with a document once it stops where complete().
//
// distance() is the fewest bytes that complete the document from here; TokenConstraint uses it
// to close the document in time when the token budget runs out.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "runtime/sampling/json_grammar.h"

namespace tandem {

// Deepest stack a document may build (nested containers and the grammar's own nesting).
inline constexpr size_t kMaxAutomatonStack = 96;
// Whitespace bytes allowed in one run between JSON tokens.
inline constexpr uint8_t kMaxWhitespaceRun = 24;
// The most ways the text may be parsed at once (alternatives that start alike).
inline constexpr size_t kMaxAutomatonThreads = 64;

struct AutomatonFrame {
  uint32_t node = 0;
  uint8_t phase = 0;
  uint8_t ws = 0;      // whitespace bytes in the current run
  uint8_t esc = 0;     // string lexer: 0 plain, 1 after '\', 2..5 hex digits of \u still to come
  uint8_t utf8 = 0;    // string lexer: UTF-8 continuation bytes still to come
  uint8_t u8first = 0; // string lexer: the range of the next one (overlongs and surrogates are out)
  uint32_t count = 0;  // Literal/Seq: position; Array: items; Number: digits; Object: key bytes
  int32_t prop = -1;   // Object: the property whose value is read (-1: an additional one)
  uint64_t seen = 0;   // Object: properties present
  uint64_t cand = 0;   // Object: declared properties the key being read still matches
};

using AutomatonStack = std::vector<AutomatonFrame>;

class JsonAutomaton {
 public:
  explicit JsonAutomaton(std::shared_ptr<const JsonGrammar> grammar);

  // Advances over bytes; false (and the state is left dead) when they leave the grammar.
  bool feed(std::string_view bytes);
  bool feed(uint8_t byte);
  bool dead() const { return stacks_.empty(); }
  // The text so far is a whole document (more bytes may still extend it, e.g. a number).
  bool complete() const;
  // Complete, and no byte can follow: the document is over.
  bool closed() const;
  // Fewest bytes that complete the document (0 when complete; large when dead).
  size_t distance() const;
  // True when every way of reading is inside a JSON string's contents with nothing pending
  // (no escape, no partial UTF-8 character): any plain text continues it.
  bool in_plain_string() const;

  const JsonGrammar& grammar() const { return *grammar_; }
  const std::vector<AutomatonStack>& stacks() const { return stacks_; }

  // The step on one stack, for TokenConstraint's trie walk: appends the stacks that result
  // from reading byte (none: rejected) to out[n..], n updated; out's elements are reused.
  void advance(const AutomatonStack& stack, uint8_t byte, std::vector<AutomatonStack>& out, size_t& n) const;
  bool stack_complete(const AutomatonStack& stack) const;
  size_t stack_distance(const AutomatonStack& stack) const;
  bool stack_in_plain_string(const AutomatonStack& stack) const;
  // True when every reading expects literal markup next (a Literal of the grammar).
  bool expects_literal() const;

 private:
  void step(AutomatonStack& s, uint8_t c, std::vector<AutomatonStack>& out, size_t& n) const;
  AutomatonFrame fresh(uint32_t node) const;
  size_t frame_rest(const AutomatonFrame& f) const;
  bool starts_with_literal(uint32_t node, int depth) const;

  std::shared_ptr<const JsonGrammar> grammar_;
  std::vector<AutomatonStack> stacks_;
  std::vector<AutomatonStack> scratch_;
};

}  // namespace tandem
