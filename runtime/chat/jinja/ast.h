// The syntax tree of a parsed template: expressions and statements, each with the line and
// column it came from for error messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/chat/jinja/value.h"

namespace tandem::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Pos {
  uint32_t line = 1, column = 1;
};

struct Arg {
  std::string name;  // empty for positional
  ExprPtr value;
};

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    List,       // items
    Tuple,      // items (evaluated as a list)
    Dict,       // keys[i]: items[i]
    Attribute,  // object.name
    Subscript,  // object[index]
    Slice,      // object[items[0]:items[1]:items[2]] (null Exprs where omitted)
    Call,       // object(args)
    Filter,     // object | name(args)
    Test,       // object is [not] name(args)  (negated)
    Unary,      // op object   ("not", "-", "+")
    Binary,     // left op right
    Conditional // items[0] if object else items[1]
  };
  Kind kind;
  Pos pos;
  Value value;
  std::string name;  // Name, Attribute, Filter, Test; op for Unary/Binary
  bool negated = false;
  ExprPtr object, left, right;
  std::vector<ExprPtr> items, keys;
  std::vector<Arg> args;
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, CallBlock };
  Kind kind;
  Pos pos;
  std::string text;                   // Text
  ExprPtr expr;                       // Output, Set value, For iterable
  std::vector<ExprPtr> conditions;    // If: one per branch (else has none)
  std::vector<Body> branches;         // If: bodies (one more than conditions when there is an else)
  std::vector<std::string> targets;   // For loop variables; Set names (one, or a tuple)
  std::string attribute;              // Set ns.attribute
  ExprPtr filter;                     // For ... if filter
  Body body, else_body;               // For; SetBlock/Macro body
  std::vector<MacroParam> params;     // Macro
  std::string name;                   // Macro name
};

struct Program {
  Body body;
};

}  // namespace tandem::jinja
