// Splits a Jinja template into tokens: raw text, the openers/closers of {{ }} and {% %}, and the
// names, literals and operators inside them. Comments ({# #}) are dropped. Whitespace control is
// applied here, the way Hugging Face transformers configures Jinja for chat templates
// (trim_blocks and lstrip_blocks on): a block tag or comment eats the newline right after it and
// the spaces before it on its line; `-` beside a delimiter strips all whitespace on that side,
// `+` turns lstrip/trim off for that tag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::jinja {

enum class TokenKind {
  Text,        // raw template text (value)
  ExprOpen,    // {{
  ExprClose,   // }}
  StmtOpen,    // {%
  StmtClose,   // %}
  Name,        // identifier or keyword (value)
  String,      // string literal, escapes resolved (value)
  Integer,     // (value: the digits)
  Float,       // (value: the text)
  Op,          // operator or punctuation (value: "+", "==", "(", ...)
  End,         // end of input
};

struct Token {
  TokenKind kind;
  std::string value;
  uint32_t line = 1;
  uint32_t column = 1;
};

// Error (naming line and column) for an unterminated tag, string or comment, or a character
// that is not part of the language.
std::vector<Token> tokenize(std::string_view source);

// "chat template line L, column C: " for messages.
std::string where(uint32_t line, uint32_t column);

}  // namespace tandem::jinja
