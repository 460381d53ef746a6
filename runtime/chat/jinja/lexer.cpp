#include "runtime/chat/jinja/lexer.h"

#include <algorithm>
#include <cctype>

#include "runtime/core/error.h"

namespace tandem::jinja {

std::string where(uint32_t line, uint32_t column) {
  return "chat template line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
}

namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  std::vector<Token> run() {
    bool trim_next = false;  // strip leading whitespace of the next text (a `-` closer)
    bool trim_newline = false;  // drop one newline at the start of the next text (trim_blocks)
    while (pos_ < s_.size()) {
      const size_t open = find_open(pos_);
      std::string text(s_.substr(pos_, open - pos_));
      const uint32_t tl = line_, tc = col_;
      advance_to(open);
      if (trim_newline && !text.empty() && text[0] == '\n') text.erase(0, 1);
      else if (trim_newline && text.size() >= 2 && text[0] == '\r' && text[1] == '\n') text.erase(0, 2);
      if (trim_next) text.erase(0, text.find_first_not_of(" \t\r\n\f\v") == std::string::npos
                                       ? text.size()
                                       : text.find_first_not_of(" \t\r\n\f\v"));
      trim_next = trim_newline = false;
      if (open == s_.size()) {
        push_text(std::move(text), tl, tc);
        break;
      }
      const char kind = s_[open + 1];  // '{', '%' or '#'
      const char modifier = open + 2 < s_.size() ? s_[open + 2] : '\0';
      if (modifier == '-') {
        text.erase(text.find_last_not_of(" \t\r\n\f\v") + 1);
      } else if (kind != '{' && modifier != '+') {
        // lstrip_blocks: spaces and tabs between the line start and a block/comment tag go.
        size_t b = open;
        while (b > 0 && (s_[b - 1] == ' ' || s_[b - 1] == '\t')) --b;
        if (b == 0 || s_[b - 1] == '\n') text.erase(text.size() - std::min(text.size(), open - b));
      }
      push_text(std::move(text), tl, tc);
      const uint32_t ol = line_, oc = col_;
      advance_to(open + 2 + ((modifier == '-' || modifier == '+') ? 1 : 0));
      if (kind == '#') {
        const size_t close = s_.find("#}", pos_);
        if (close == std::string_view::npos) fail(where(ol, oc), "comment is not closed with #}");
        trim_next = close > pos_ && s_[close - 1] == '-';
        trim_newline = !trim_next && !(close > pos_ && s_[close - 1] == '+');
        advance_to(close + 2);
        continue;
      }
      tokens_.push_back({kind == '{' ? TokenKind::ExprOpen : TokenKind::StmtOpen, "", ol, oc});
      const char closer = kind == '{' ? '}' : '%';
      lex_inside(closer, ol, oc);
      // At the closer: "-}}" / "-%}" / "+%}" or plain.
      if (s_[pos_] == '-') {
        trim_next = true;
        advance_to(pos_ + 1);
      } else if (s_[pos_] == '+') {
        advance_to(pos_ + 1);
      } else if (closer == '%') {
        trim_newline = true;
      }
      tokens_.push_back({kind == '{' ? TokenKind::ExprClose : TokenKind::StmtClose, "", line_, col_});
      advance_to(pos_ + 2);
    }
    tokens_.push_back({TokenKind::End, "", line_, col_});
    return std::move(tokens_);
  }

 private:
  size_t find_open(size_t from) const {
    for (size_t i = from; i + 1 < s_.size(); ++i)
      if (s_[i] == '{' && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    return s_.size();
  }

  void advance_to(size_t to) {
    for (; pos_ < to && pos_ < s_.size(); ++pos_) {
      if (s_[pos_] == '\n') {
        ++line_;
        col_ = 1;
      } else if ((static_cast<unsigned char>(s_[pos_]) & 0xC0) != 0x80) {
        ++col_;
      }
    }
  }

  void push_text(std::string text, uint32_t l, uint32_t c) {
    if (!text.empty()) tokens_.push_back({TokenKind::Text, std::move(text), l, c});
  }

  bool at_closer(char closer) const {
    size_t i = pos_;
    if (i < s_.size() && (s_[i] == '-' || (closer == '%' && s_[i] == '+'))) ++i;
    return i + 1 < s_.size() && s_[i] == closer && s_[i + 1] == '}';
  }

  void lex_inside(char closer, uint32_t ol, uint32_t oc) {
    for (;;) {
      while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) advance_to(pos_ + 1);
      if (pos_ >= s_.size())
        fail(where(ol, oc), "tag is not closed with ", closer == '}' ? "}}" : "%}");
      if (at_closer(closer)) return;
      const uint32_t l = line_, c = col_;
      const char ch = s_[pos_];
      if (std::isalpha(static_cast<unsigned char>(ch)) || ch == '_') {
        size_t e = pos_;
        while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        tokens_.push_back({TokenKind::Name, std::string(s_.substr(pos_, e - pos_)), l, c});
        advance_to(e);
      } else if (std::isdigit(static_cast<unsigned char>(ch))) {
        size_t e = pos_;
        while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
        bool is_float = false;
        if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
        }
        if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
          size_t x = e + 1;
          if (x < s_.size() && (s_[x] == '+' || s_[x] == '-')) ++x;
          if (x < s_.size() && std::isdigit(static_cast<unsigned char>(s_[x]))) {
            is_float = true;
            e = x;
            while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
          }
        }
        std::string digits;
        for (char d : s_.substr(pos_, e - pos_))
          if (d != '_') digits += d;
        tokens_.push_back({is_float ? TokenKind::Float : TokenKind::Integer, digits, l, c});
        advance_to(e);
      } else if (ch == '\'' || ch == '"') {
        lex_string(ch, l, c);
      } else {
        static constexpr std::string_view two[] = {"==", "!=", "<=", ">=", "//", "**"};
        std::string op;
        for (auto t : two)
          if (s_.substr(pos_, 2) == t) op = std::string(t);
        if (op.empty()) {
          if (std::string_view("+-*/%~<>=()[]{},.:|").find(ch) == std::string_view::npos)
            fail(where(l, c), "unexpected character '", ch, "' inside a tag");
          op = std::string(1, ch);
        }
        tokens_.push_back({TokenKind::Op, op, l, c});
        advance_to(pos_ + op.size());
      }
    }
  }

  void lex_string(char quote, uint32_t l, uint32_t c) {
    std::string v;
    size_t i = pos_ + 1;
    for (;; ++i) {
      if (i >= s_.size()) fail(where(l, c), "string is not closed");
      const char ch = s_[i];
      if (ch == quote) break;
      if (ch != '\\') {
        v += ch;
        continue;
      }
      if (++i >= s_.size()) fail(where(l, c), "string is not closed");
      switch (s_[i]) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case '0': v += '\0'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case '\n': break;  // line continuation
        case 'u': {
          if (i + 4 >= s_.size()) fail(where(l, c), "\\u escape needs 4 hex digits");
          uint32_t cp = 0;
          for (int k = 1; k <= 4; ++k) {
            const char h = s_[i + size_t(k)];
            if (!std::isxdigit(static_cast<unsigned char>(h))) fail(where(l, c), "\\u escape needs 4 hex digits");
            cp = cp * 16 + uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          i += 4;
          if (cp < 0x80) {
            v += char(cp);
          } else if (cp < 0x800) {
            v += char(0xC0 | (cp >> 6));
            v += char(0x80 | (cp & 0x3F));
          } else {
            v += char(0xE0 | (cp >> 12));
            v += char(0x80 | ((cp >> 6) & 0x3F));
            v += char(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:  // Python keeps unknown escapes as written
          v += '\\';
          v += s_[i];
      }
    }
    tokens_.push_back({TokenKind::String, std::move(v), l, c});
    advance_to(i + 1);
  }

  std::string_view s_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace tandem::jinja
