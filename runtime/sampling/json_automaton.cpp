#include "runtime/sampling/json_automaton.h"

#include <algorithm>
#include <bit>

namespace tandem {
namespace {

using Kind = GrammarNode::Kind;

constexpr uint32_t kMaxIntDigits = 15, kMaxFracDigits = 15, kMaxExpDigits = 2;  // 15 digits e99 stays a finite double

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Object phases.
enum : uint8_t { kOpen, kFirst, kKey, kColon, kValue, kAfterValue, kAfterComma, kClosed };
// Array phases (kOpen, kFirst as above).
enum : uint8_t { kAfterItem = 3, kAfterArrayComma = 4, kArrayClosed = 5 };

enum class Lex { Reject, Consumed, Closed };

// One byte of a JSON string's contents (after the opening quote).
Lex lex_string(AutomatonFrame& f, uint8_t c) {
  if (f.esc == 1) {
    if (c == 'u') {
      f.esc = 5;  // four hex digits to come
      return Lex::Consumed;
    }
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
      f.esc = 0;
      return Lex::Consumed;
    }
    return Lex::Reject;
  }
  if (f.esc >= 2) {
    if (!is_hex(c)) return Lex::Reject;
    f.esc = f.esc == 2 ? 0 : uint8_t(f.esc - 1);
    return Lex::Consumed;
  }
  if (f.utf8 > 0) {
    static constexpr uint8_t lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80}, hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
    if (c < lo[f.u8first] || c > hi[f.u8first]) return Lex::Reject;
    f.u8first = 0;
    --f.utf8;
    return Lex::Consumed;
  }
  if (c == '"') return Lex::Closed;
  if (c == '\\') {
    f.esc = 1;
    return Lex::Consumed;
  }
  if (c < 0x20) return Lex::Reject;
  if (c < 0x80) return Lex::Consumed;
  if (c >= 0xC2 && c <= 0xDF) f.utf8 = 1;
  else if (c >= 0xE0 && c <= 0xEF) f.utf8 = 2;
  else if (c >= 0xF0 && c <= 0xF4) f.utf8 = 3;
  else return Lex::Reject;
  f.u8first = c == 0xE0 ? 1 : c == 0xED ? 2 : c == 0xF0 ? 3 : c == 0xF4 ? 4 : 0;
  return Lex::Consumed;
}

size_t lex_pending(const AutomatonFrame& f) {
  return size_t(f.esc == 1 ? 1 : f.esc >= 2 ? f.esc - 1 : 0) + f.utf8;
}

// Whitespace between tokens: a bounded run.
bool take_ws(AutomatonFrame& f, uint8_t c, bool& consumed) {
  if (!is_ws(c)) {
    f.ws = 0;
    return false;
  }
  consumed = f.ws < kMaxWhitespaceRun;
  if (consumed) ++f.ws;
  return true;
}

}  // namespace

JsonAutomaton::JsonAutomaton(std::shared_ptr<const JsonGrammar> grammar) : grammar_(std::move(grammar)) {
  stacks_.push_back({fresh(grammar_->root)});
}

AutomatonFrame JsonAutomaton::fresh(uint32_t node) const {
  AutomatonFrame f;
  f.node = node;
  return f;
}

bool JsonAutomaton::feed(std::string_view bytes) {
  for (char ch : bytes)
    if (!feed(uint8_t(ch))) return false;
  return true;
}

bool JsonAutomaton::feed(uint8_t byte) {
  size_t n = 0;
  for (const auto& s : stacks_) {
    advance(s, byte, scratch_, n);
    if (n > kMaxAutomatonThreads) n = kMaxAutomatonThreads;  // the first readings are kept
  }
  scratch_.resize(n);
  std::swap(stacks_, scratch_);
  return !stacks_.empty();
}

bool JsonAutomaton::complete() const {
  for (const auto& s : stacks_)
    if (stack_complete(s)) return true;
  return false;
}

bool JsonAutomaton::closed() const {
  if (!complete()) return false;
  std::vector<AutomatonStack> out;
  for (int b = 0; b < 256; ++b)
    for (const auto& s : stacks_) {
      size_t n = 0;
      advance(s, uint8_t(b), out, n);
      if (n > 0) return false;
    }
  return true;
}

size_t JsonAutomaton::distance() const {
  size_t best = SIZE_MAX;
  for (const auto& s : stacks_) best = std::min(best, stack_distance(s));
  return best;
}

bool JsonAutomaton::in_plain_string() const {
  if (stacks_.empty()) return false;
  for (const auto& s : stacks_)
    if (!stack_in_plain_string(s)) return false;
  return true;
}

bool JsonAutomaton::stack_in_plain_string(const AutomatonStack& s) const {
  if (s.empty()) return false;
  const AutomatonFrame& f = s.back();
  const GrammarNode& g = grammar_->nodes[f.node];
  if (g.kind == Kind::String) return f.phase == 1 && f.esc == 0 && f.utf8 == 0;
  // A free (additional) object key reads like a string too.
  return g.kind == Kind::Object && f.phase == kKey && g.additional >= 0 && f.esc == 0 && f.utf8 == 0;
}

bool JsonAutomaton::starts_with_literal(uint32_t node, int depth) const {
  if (depth > 32) return false;
  const GrammarNode& g = grammar_->nodes[node];
  switch (g.kind) {
    case Kind::Literal: return !g.text.empty();
    case Kind::Seq: return !g.children.empty() && starts_with_literal(g.children[0], depth + 1);
    case Kind::Choice:
      for (uint32_t c : g.children)
        if (!starts_with_literal(c, depth + 1)) return false;
      return !g.children.empty();
    default: return false;
  }
}

bool JsonAutomaton::expects_literal() const {
  if (stacks_.empty()) return false;
  for (const auto& s : stacks_) {
    bool literal = false;
    // From the top down, past frames that are done, to what comes next.
    for (size_t i = s.size(); i-- > 0;) {
      const AutomatonFrame& f = s[i];
      const GrammarNode& g = grammar_->nodes[f.node];
      if (g.kind == Kind::Literal && f.count < g.text.size()) {
        literal = true;
        break;
      }
      if (g.kind == Kind::Literal) continue;
      if (g.kind == Kind::Seq) {
        if (f.count < g.children.size()) {
          literal = starts_with_literal(g.children[f.count], 0);
          break;
        }
        continue;
      }
      literal = g.kind == Kind::Choice && starts_with_literal(f.node, 0);
      break;
    }
    if (!literal) return false;
  }
  return true;
}

bool JsonAutomaton::stack_complete(const AutomatonStack& s) const {
  for (const AutomatonFrame& f : s) {
    const GrammarNode& g = grammar_->nodes[f.node];
    bool end = false;
    switch (g.kind) {
      case Kind::Literal: end = f.count == g.text.size(); break;
      case Kind::Seq: end = f.count == g.children.size(); break;
      case Kind::Choice: end = false; break;
      case Kind::String: end = f.phase == 2; break;
      case Kind::Number: end = f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8; break;
      case Kind::Object: end = f.phase == kClosed; break;
      case Kind::Array: end = f.phase == kArrayClosed; break;
    }
    if (!end) return false;
  }
  return !s.empty();
}

size_t JsonAutomaton::stack_distance(const AutomatonStack& s) const {
  size_t d = 0;
  for (const AutomatonFrame& f : s) d += frame_rest(f);
  return d;
}

size_t JsonAutomaton::frame_rest(const AutomatonFrame& f) const {
  const JsonGrammar& G = *grammar_;
  const GrammarNode& g = G.nodes[f.node];
  const auto& mc = G.min_chars;
  switch (g.kind) {
    case Kind::Literal: return g.text.size() - f.count;
    case Kind::Seq: {
      size_t d = 0;
      for (size_t i = f.count; i < g.children.size(); ++i) d += mc[g.children[i]];
      return d;
    }
    case Kind::Choice: return mc[f.node];
    case Kind::String: return f.phase == 0 ? 2 : f.phase == 1 ? 1 + lex_pending(f) : 0;
    case Kind::Number: {
      static constexpr uint8_t rest[9] = {1, 1, 0, 0, 1, 0, 1, 1, 0};
      return rest[std::min<uint8_t>(f.phase, 8)];
    }
    case Kind::Array: {
      const size_t item = mc[g.children[0]];
      const size_t need = f.count < g.min_items ? g.min_items - f.count : 0;
      switch (f.phase) {
        case kOpen: return mc[f.node];
        case kFirst: return g.min_items == 0 ? 1 : g.min_items * item + (g.min_items - 1) + 1;
        case kAfterItem: return need * (item + 1) + 1;
        case kAfterArrayComma: {
          const size_t k = std::max<size_t>(need, 1);
          return k * item + (k - 1) + 1;
        }
        default: return 0;
      }
    }
    case Kind::Object: {
      auto entry = [&](size_t k) { return g.keys[k].size() + 3 + mc[g.values[k]]; };
      const uint64_t missing = g.required & ~f.seen;
      auto sum_missing = [&](uint64_t m) {
        size_t d = 0;
        for (size_t k = 0; k < g.keys.size(); ++k)
          if (m >> k & 1) d += entry(k);
        return d;
      };
      // After a value: ", entry" for each missing property, then '}'.
      auto rest_after = [&](uint64_t m) { return sum_missing(m) + size_t(std::popcount(m)) + 1; };
      const size_t nm = size_t(std::popcount(missing));
      const size_t value = f.prop >= 0 ? mc[g.values[size_t(f.prop)]] : g.additional >= 0 ? mc[size_t(g.additional)] : 0;
      switch (f.phase) {
        case kOpen: return mc[f.node];
        case kFirst: return nm == 0 ? 1 : sum_missing(missing) + (nm - 1) + 1;
        case kKey: {
          size_t best = SIZE_MAX;
          for (size_t k = 0; k < g.keys.size(); ++k)
            if ((f.cand >> k & 1) && !(f.seen >> k & 1))
              best = std::min(best, (g.keys[k].size() - f.count) + 2 + mc[g.values[k]] +
                                        rest_after(missing & ~(uint64_t(1) << k)));
          if (g.additional >= 0)
            best = std::min(best, lex_pending(f) + 2 + mc[size_t(g.additional)] + rest_after(missing));
          return best == SIZE_MAX ? 1 : best;
        }
        case kColon: return 1 + value + rest_after(missing);
        case kValue: return value + rest_after(missing);
        case kAfterValue: return rest_after(missing);
        case kAfterComma: {
          if (nm > 0) return sum_missing(missing) + (nm - 1) + 1;
          if (g.additional >= 0) return 2 + 1 + mc[size_t(g.additional)] + 1;
          size_t best = SIZE_MAX;
          for (size_t k = 0; k < g.keys.size(); ++k)
            if (!(f.seen >> k & 1)) best = std::min(best, entry(k) + 1);
          return best == SIZE_MAX ? 1 : best;
        }
        default: return 0;
      }
    }
  }
  return 0;
}

void JsonAutomaton::advance(const AutomatonStack& stack, uint8_t c, std::vector<AutomatonStack>& out, size_t& n) const {
  if (n >= out.size()) out.resize(n + 1);
  AutomatonStack& s = out[n];
  s = stack;  // reuses the element's capacity
  step(s, c, out, n);
}

// Reads c on s (which is out[n]); on success n advances past it. A Choice splits into
// out[n], out[n+1], ...
void JsonAutomaton::step(AutomatonStack&, uint8_t c, std::vector<AutomatonStack>& out, size_t& n) const {
  const JsonGrammar& G = *grammar_;
  const size_t self = n;
  for (;;) {
    AutomatonStack& s = out[self];
    if (s.empty()) return;
    AutomatonFrame& f = s.back();
    const GrammarNode& g = G.nodes[f.node];
    auto accept = [&] { n = self + 1; };
    auto push = [&](uint32_t node) -> bool {
      if (s.size() >= kMaxAutomatonStack) return false;
      s.push_back(fresh(node));
      return true;
    };
    switch (g.kind) {
      case Kind::Choice: {
        // Replace the Choice by each alternative in turn, each in a stack of its own.
        AutomatonStack base = std::move(s);
        base.pop_back();
        size_t k = self;
        for (uint32_t alt : g.children) {
          if (k >= out.size()) out.resize(k + 1);
          out[k] = base;
          out[k].push_back(fresh(alt));
          const size_t before = k;
          size_t m = k;
          step(out[k], c, out, m);
          k = m > before ? m : before;
          if (k >= kMaxAutomatonThreads + self) break;
        }
        n = k;
        return;
      }
      case Kind::Literal:
        if (f.count < g.text.size()) {
          if (uint8_t(g.text[f.count]) == c) {
            ++f.count;
            accept();
          }
          return;
        }
        s.pop_back();
        continue;
      case Kind::Seq:
        if (f.count < g.children.size()) {
          const uint32_t child = g.children[f.count++];
          if (!push(child)) return;
          continue;
        }
        s.pop_back();
        continue;
      case Kind::String:
        if (f.phase == 0) {
          if (c == '"') {
            f.phase = 1;
            accept();
          }
          return;
        }
        if (f.phase == 1) {
          const Lex l = lex_string(f, c);
          if (l == Lex::Closed) f.phase = 2;
          if (l != Lex::Reject) accept();
          return;
        }
        s.pop_back();
        continue;
      case Kind::Number: {
        const bool digit = is_digit(c);
        auto to = [&](uint8_t phase, bool counts) {
          if (counts) {
            const uint32_t cap = phase == 2 ? kMaxIntDigits : phase == 5 ? kMaxFracDigits : kMaxExpDigits;
            if (f.phase != phase) f.count = 0;
            if (f.count >= cap) return;
            ++f.count;
          }
          f.phase = phase;
          accept();
        };
        switch (f.phase) {
          case 0:
            if (c == '-') return to(1, false);
            [[fallthrough]];
          case 1:
            if (c == '0') return to(3, false);
            if (digit) return to(2, true);
            return;
          case 2:
          case 3:
            if (f.phase == 2 && digit) return to(2, true);
            if (!g.integer && c == '.') return to(4, false);
            if (!g.integer && (c == 'e' || c == 'E')) return to(6, false);
            break;
          case 4:
            if (digit) return to(5, true);
            return;
          case 5:
            if (digit) return to(5, true);
            if (c == 'e' || c == 'E') return to(6, false);
            break;
          case 6:
            if (c == '+' || c == '-') return to(7, false);
            [[fallthrough]];
          case 7:
            if (digit) return to(8, true);
            return;
          case 8:
            if (digit) return to(8, true);
            break;
        }
        s.pop_back();  // a complete number ends before c
        continue;
      }
      case Kind::Array: {
        bool consumed = false;
        switch (f.phase) {
          case kOpen:
            if (c == '[') {
              f.phase = kFirst;
              accept();
            }
            return;
          case kFirst:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            if (c == ']') {
              if (g.min_items == 0) {
                f.phase = kArrayClosed;
                accept();
              }
              return;
            }
            if (g.max_items == 0) return;
            f.count = 1;
            f.phase = kAfterItem;
            if (!push(g.children[0])) return;
            continue;
          case kAfterItem:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            if (c == ',' && f.count < g.max_items) {
              f.phase = kAfterArrayComma;
              accept();
            } else if (c == ']' && f.count >= g.min_items) {
              f.phase = kArrayClosed;
              accept();
            }
            return;
          case kAfterArrayComma:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            ++f.count;
            f.phase = kAfterItem;
            if (!push(g.children[0])) return;
            continue;
          default:
            s.pop_back();
            continue;
        }
      }
      case Kind::Object: {
        bool consumed = false;
        const uint64_t all = g.keys.size() >= 64 ? ~uint64_t(0) : (uint64_t(1) << g.keys.size()) - 1;
        const uint64_t unseen = all & ~f.seen;
        const bool can_add_key = g.additional >= 0 || unseen != 0;
        const bool can_close = (g.required & ~f.seen) == 0;
        auto open_key = [&] {
          f.phase = kKey;
          f.count = 0;
          f.esc = f.utf8 = f.u8first = 0;
          f.cand = g.additional >= 0 ? all : unseen;
          accept();
        };
        switch (f.phase) {
          case kOpen:
            if (c == '{') {
              f.phase = kFirst;
              accept();
            }
            return;
          case kFirst:
          case kAfterComma:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            if (c == '"' && can_add_key) return open_key();
            if (c == '}' && f.phase == kFirst && can_close) {
              f.phase = kClosed;
              accept();
            }
            return;
          case kKey: {
            const Lex l = lex_string(f, c);
            if (l == Lex::Reject) return;
            if (l == Lex::Consumed) {
              uint64_t next = 0;
              for (size_t k = 0; k < g.keys.size(); ++k)
                if ((f.cand >> k & 1) && f.count < g.keys[k].size() && uint8_t(g.keys[k][f.count]) == c)
                  next |= uint64_t(1) << k;
              f.cand = next;
              ++f.count;
              if (next == 0 && g.additional < 0) return;
              accept();
              return;
            }
            // The closing quote: a declared property, or an additional one.
            int32_t match = -1;
            for (size_t k = 0; k < g.keys.size(); ++k)
              if ((f.cand >> k & 1) && g.keys[k].size() == f.count) match = int32_t(k);
            if (match >= 0) {
              if (f.seen >> match & 1) return;  // a duplicate key
              f.seen |= uint64_t(1) << match;
            } else if (g.additional < 0) {
              return;
            }
            f.prop = match;
            f.phase = kColon;
            f.ws = 0;
            accept();
            return;
          }
          case kColon:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            if (c == ':') {
              f.phase = kValue;
              accept();
            }
            return;
          case kValue: {
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            const uint32_t node = f.prop >= 0 ? g.values[size_t(f.prop)] : uint32_t(g.additional);
            f.phase = kAfterValue;
            if (!push(node)) return;
            continue;
          }
          case kAfterValue:
            if (take_ws(f, c, consumed)) {
              if (consumed) accept();
              return;
            }
            if (c == ',' && can_add_key) {
              f.phase = kAfterComma;
              accept();
            } else if (c == '}' && can_close) {
              f.phase = kClosed;
              accept();
            }
            return;
          default:
            s.pop_back();
            continue;
        }
      }
    }
  }
}

}  // namespace tandem
