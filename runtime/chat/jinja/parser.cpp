#include "runtime/chat/jinja/parser.h"

#include <charconv>
#include <cstdlib>

#include "runtime/chat/jinja/lexer.h"
#include "runtime/core/error.h"

namespace tandem::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Program run() {
    Program p;
    std::string stop;
    p.body = parse_body({}, &stop);
    return p;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth)
        fail(where(p_.cur().line, p_.cur().column), "nesting deeper than ", kMaxParseDepth, " levels");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  Pos pos() const { return {cur().line, cur().column}; }
  [[noreturn]] void error(const std::string& what) const {
    const Token& k = cur();
    std::string found = k.kind == TokenKind::End         ? "the end of the template"
                        : k.kind == TokenKind::StmtClose ? "'%}'"
                        : k.kind == TokenKind::ExprClose ? "'}}'"
                        : k.kind == TokenKind::Text      ? "text"
                                                         : "'" + k.value + "'";
    fail(where(k.line, k.column), what, " (found ", found, ")");
  }
  bool is_op(std::string_view op) const { return cur().kind == TokenKind::Op && cur().value == op; }
  bool is_name(std::string_view n) const { return cur().kind == TokenKind::Name && cur().value == n; }
  void expect_op(std::string_view op) {
    if (!is_op(op)) error("expected '" + std::string(op) + "'");
    ++i_;
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::Name) error("expected a name");
    return t_[i_++].value;
  }
  void expect_stmt_close() {
    if (cur().kind != TokenKind::StmtClose) error("expected '%}'");
    ++i_;
  }

  // Statements until a {% name %} whose name is in stops (returned in *stop), or the end.
  Body parse_body(const std::vector<std::string_view>& stops, std::string* stop) {
    DepthGuard g(*this);
    Body body;
    for (;;) {
      const Token& k = cur();
      if (k.kind == TokenKind::End) {
        if (!stops.empty()) {
          std::string names;
          for (auto s : stops) names += (names.empty() ? "" : " or ") + std::string(s);
          error("expected {% " + names + " %}");
        }
        return body;
      }
      if (k.kind == TokenKind::Text) {
        auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::Text, pos()});
        s->text = k.value;
        body.push_back(std::move(s));
        ++i_;
      } else if (k.kind == TokenKind::ExprOpen) {
        auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::Output, pos()});
        ++i_;
        s->expr = parse_expr();
        if (cur().kind != TokenKind::ExprClose) error("expected '}}'");
        ++i_;
        body.push_back(std::move(s));
      } else if (k.kind == TokenKind::StmtOpen) {
        const Token& kw = peek();
        if (kw.kind != TokenKind::Name) {
          ++i_;
          error("expected a statement name after '{%'");
        }
        for (auto s : stops)
          if (kw.value == s) {
            i_ += 2;
            *stop = kw.value;
            return body;
          }
        ++i_;
        body.push_back(parse_statement());
      } else {
        error("unexpected token");
      }
    }
  }

  StmtPtr parse_statement() {
    const Pos p = pos();
    const std::string kw = expect_name();
    std::string stop;
    if (kw == "if") {
      auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::If, p});
      s->conditions.push_back(parse_expr());
      expect_stmt_close();
      for (;;) {
        s->branches.push_back(parse_body({"elif", "else", "endif"}, &stop));
        if (stop == "elif") {
          s->conditions.push_back(parse_expr());
          expect_stmt_close();
        } else if (stop == "else") {
          expect_stmt_close();
          s->branches.push_back(parse_body({"endif"}, &stop));
          expect_stmt_close();
          return s;
        } else {
          expect_stmt_close();
          return s;
        }
      }
    }
    if (kw == "for") {
      auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::For, p});
      s->targets.push_back(expect_name());
      while (is_op(",")) {
        ++i_;
        s->targets.push_back(expect_name());
      }
      if (!is_name("in")) error("expected 'in'");
      ++i_;
      s->expr = parse_or_expr();  // no conditional here: `if` filters the loop
      if (is_name("if")) {
        ++i_;
        s->filter = parse_or_expr();
      }
      if (is_name("recursive")) error("recursive loops are not supported");
      expect_stmt_close();
      s->body = parse_body({"else", "endfor"}, &stop);
      expect_stmt_close();
      if (stop == "else") {
        s->else_body = parse_body({"endfor"}, &stop);
        expect_stmt_close();
      }
      return s;
    }
    if (kw == "set") {
      auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::Set, p});
      s->targets.push_back(expect_name());
      if (is_op(".")) {
        ++i_;
        s->attribute = expect_name();
      } else {
        while (is_op(",")) {
          ++i_;
          s->targets.push_back(expect_name());
        }
      }
      if (cur().kind == TokenKind::StmtClose) {
        if (s->targets.size() != 1 || !s->attribute.empty()) error("a {% set %} block takes one name");
        ++i_;
        s->kind = Stmt::Kind::SetBlock;
        s->body = parse_body({"endset"}, &stop);
        expect_stmt_close();
        return s;
      }
      expect_op("=");
      s->expr = parse_expr();
      expect_stmt_close();
      return s;
    }
    if (kw == "macro") {
      auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::Macro, p});
      s->name = expect_name();
      expect_op("(");
      while (!is_op(")")) {
        MacroParam mp;
        mp.name = expect_name();
        if (is_op("=")) {
          ++i_;
          mp.default_value = parse_expr();
        }
        s->params.push_back(std::move(mp));
        if (!is_op(")")) expect_op(",");
      }
      ++i_;
      expect_stmt_close();
      s->body = parse_body({"endmacro"}, &stop);
      expect_stmt_close();
      return s;
    }
    if (kw == "break" || kw == "continue") {
      expect_stmt_close();
      return std::make_unique<Stmt>(Stmt{kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, p});
    }
    if (kw == "generation") {
      // transformers' marker for assistant-token masks: renders its body unchanged.
      expect_stmt_close();
      auto s = std::make_unique<Stmt>(Stmt{Stmt::Kind::If, p});
      auto always = std::make_unique<Expr>(Expr{Expr::Kind::Literal, p});
      always->value = true;
      s->conditions.push_back(std::move(always));
      s->branches.push_back(parse_body({"endgeneration"}, &stop));
      expect_stmt_close();
      return s;
    }
    --i_;
    error("unknown or unsupported statement '" + kw + "'");
  }

  // Expressions, lowest precedence first (Jinja's order).
  ExprPtr parse_expr() {
    DepthGuard g(*this);
    ExprPtr e = parse_or_expr();
    if (is_name("if")) {
      auto c = make(Expr::Kind::Conditional);
      ++i_;
      c->object = parse_or_expr();
      c->items.push_back(std::move(e));
      if (is_name("else")) {
        ++i_;
        c->items.push_back(parse_expr());
      } else {
        c->items.push_back(nullptr);  // undefined when false
      }
      return c;
    }
    return e;
  }

  ExprPtr make(Expr::Kind k) { return std::make_unique<Expr>(Expr{k, pos()}); }
  ExprPtr binary(std::string op, ExprPtr l, ExprPtr r, Pos p) {
    auto b = std::make_unique<Expr>(Expr{Expr::Kind::Binary, p});
    b->name = std::move(op);
    b->left = std::move(l);
    b->right = std::move(r);
    return b;
  }

  ExprPtr parse_or_expr() {
    DepthGuard g(*this);
    ExprPtr e = parse_and();
    while (is_name("or")) {
      const Pos p = pos();
      ++i_;
      e = binary("or", std::move(e), parse_and(), p);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      const Pos p = pos();
      ++i_;
      e = binary("and", std::move(e), parse_not(), p);
    }
    return e;
  }
  ExprPtr parse_not() {
    DepthGuard g(*this);
    if (is_name("not")) {
      auto u = make(Expr::Kind::Unary);
      ++i_;
      u->name = "not";
      u->object = parse_not();
      return u;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_add();
    for (;;) {
      const Pos p = pos();
      if (cur().kind == TokenKind::Op &&
          (cur().value == "==" || cur().value == "!=" || cur().value == "<" || cur().value == ">" ||
           cur().value == "<=" || cur().value == ">=")) {
        std::string op = t_[i_++].value;
        e = binary(op, std::move(e), parse_add(), p);
      } else if (is_name("in")) {
        ++i_;
        e = binary("in", std::move(e), parse_add(), p);
      } else if (is_name("not") && peek().kind == TokenKind::Name && peek().value == "in") {
        i_ += 2;
        e = binary("not in", std::move(e), parse_add(), p);
      } else {
        return e;
      }
    }
  }
  ExprPtr parse_add() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Pos p = pos();
      std::string op = t_[i_++].value;
      e = binary(op, std::move(e), parse_concat(), p);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_mul();
    while (is_op("~")) {
      const Pos p = pos();
      ++i_;
      e = binary("~", std::move(e), parse_mul(), p);
    }
    return e;
  }
  ExprPtr parse_mul() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Pos p = pos();
      std::string op = t_[i_++].value;
      e = binary(op, std::move(e), parse_pow(), p);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (is_op("**")) {
      const Pos p = pos();
      ++i_;
      e = binary("**", std::move(e), parse_unary(), p);
    }
    return e;
  }
  ExprPtr parse_unary() {
    DepthGuard g(*this);
    if (is_op("-") || is_op("+")) {
      auto u = make(Expr::Kind::Unary);
      u->name = t_[i_++].value;
      u->object = parse_unary();
      return u;
    }
    return parse_filters_and_tests(parse_postfix(parse_primary()));
  }

  void parse_call_args(std::vector<Arg>& args) {
    expect_op("(");
    while (!is_op(")")) {
      Arg a;
      if (cur().kind == TokenKind::Name && peek().kind == TokenKind::Op && peek().value == "=") {
        a.name = t_[i_].value;
        i_ += 2;
      }
      a.value = parse_expr();
      args.push_back(std::move(a));
      if (!is_op(")")) expect_op(",");
    }
    ++i_;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        auto a = make(Expr::Kind::Attribute);
        ++i_;
        if (cur().kind == TokenKind::Integer) {  // x.0 is x[0] in Jinja
          a->kind = Expr::Kind::Subscript;
          auto idx = make(Expr::Kind::Literal);
          idx->value = Value(int64_t(std::strtoll(cur().value.c_str(), nullptr, 10)));
          ++i_;
          a->right = std::move(idx);
        } else {
          a->name = expect_name();
        }
        a->object = std::move(e);
        e = std::move(a);
      } else if (is_op("[")) {
        const Pos p = pos();
        ++i_;
        ExprPtr parts[3];
        int colons = 0;
        for (;;) {
          if (is_op("]")) break;
          if (is_op(":")) {
            if (++colons > 2) error("a slice has at most two ':'");
            ++i_;
            continue;
          }
          if (parts[colons]) error("expected ':' or ']'");
          parts[colons] = parse_expr();
        }
        ++i_;
        auto s = std::make_unique<Expr>(Expr{colons ? Expr::Kind::Slice : Expr::Kind::Subscript, p});
        s->object = std::move(e);
        if (colons) {
          for (auto& part : parts) s->items.push_back(std::move(part));
        } else {
          if (!parts[0]) error("empty subscript");
          s->right = std::move(parts[0]);
        }
        e = std::move(s);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::Call);
        parse_call_args(c->args);
        c->object = std::move(e);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters_and_tests(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        auto f = make(Expr::Kind::Filter);
        ++i_;
        f->name = expect_name();
        if (is_op("(")) parse_call_args(f->args);
        f->object = std::move(e);
        e = parse_postfix(std::move(f));
      } else if (is_name("is")) {
        auto t = make(Expr::Kind::Test);
        ++i_;
        if (is_name("not")) {
          t->negated = true;
          ++i_;
        }
        t->name = expect_name();
        if (is_op("(")) {
          parse_call_args(t->args);
        } else if (starts_test_argument()) {
          Arg a;
          a.value = parse_postfix(parse_primary());
          t->args.push_back(std::move(a));
        }
        t->object = std::move(e);
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  bool starts_test_argument() const {
    const Token& k = cur();
    if (k.kind == TokenKind::String || k.kind == TokenKind::Integer || k.kind == TokenKind::Float) return true;
    if (k.kind == TokenKind::Op) return k.value == "[" || k.value == "{";
    if (k.kind != TokenKind::Name) return false;
    static constexpr std::string_view keywords[] = {"and", "or", "not", "if", "else", "in", "is", "recursive"};
    for (auto kw : keywords)
      if (k.value == kw) return false;
    return true;
  }

  ExprPtr parse_primary() {
    DepthGuard g(*this);
    const Token& k = cur();
    switch (k.kind) {
      case TokenKind::Name: {
        auto e = make(Expr::Kind::Literal);
        ++i_;
        if (k.value == "true" || k.value == "True") e->value = true;
        else if (k.value == "false" || k.value == "False") e->value = false;
        else if (k.value == "none" || k.value == "None") e->value = None{};
        else {
          e->kind = Expr::Kind::Name;
          e->name = k.value;
        }
        return e;
      }
      case TokenKind::String: {
        auto e = make(Expr::Kind::Literal);
        std::string s;
        while (cur().kind == TokenKind::String) s += t_[i_++].value;  // adjacent literals join
        e->value = std::move(s);
        return e;
      }
      case TokenKind::Integer: {
        auto e = make(Expr::Kind::Literal);
        int64_t v = 0;
        auto r = std::from_chars(k.value.data(), k.value.data() + k.value.size(), v);
        if (r.ec != std::errc()) e->value = std::strtod(k.value.c_str(), nullptr);
        else e->value = v;
        ++i_;
        return e;
      }
      case TokenKind::Float: {
        auto e = make(Expr::Kind::Literal);
        e->value = std::strtod(k.value.c_str(), nullptr);
        ++i_;
        return e;
      }
      case TokenKind::Op:
        if (k.value == "(") {
          const Pos p = pos();
          ++i_;
          if (is_op(")")) {
            ++i_;
            return std::make_unique<Expr>(Expr{Expr::Kind::Tuple, p});
          }
          ExprPtr first = parse_expr();
          if (!is_op(",")) {
            expect_op(")");
            return first;
          }
          auto t = std::make_unique<Expr>(Expr{Expr::Kind::Tuple, p});
          t->items.push_back(std::move(first));
          while (is_op(",")) {
            ++i_;
            if (is_op(")")) break;
            t->items.push_back(parse_expr());
          }
          expect_op(")");
          return t;
        }
        if (k.value == "[") {
          auto l = make(Expr::Kind::List);
          ++i_;
          while (!is_op("]")) {
            l->items.push_back(parse_expr());
            if (!is_op("]")) expect_op(",");
          }
          ++i_;
          return l;
        }
        if (k.value == "{") {
          auto d = make(Expr::Kind::Dict);
          ++i_;
          while (!is_op("}")) {
            d->keys.push_back(parse_expr());
            expect_op(":");
            d->items.push_back(parse_expr());
            if (!is_op("}")) expect_op(",");
          }
          ++i_;
          return d;
        }
        break;
      default: break;
    }
    error("expected an expression");
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Program parse(std::string_view source) { return Parser(tokenize(source)).run(); }

}  // namespace tandem::jinja
