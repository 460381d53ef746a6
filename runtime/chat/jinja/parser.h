// Parses template text into a Program (ast.h). Errors name the line and column; nesting deeper
// than kMaxParseDepth (expressions or blocks) is an error rather than a deep recursion.
#pragma once

#include <string_view>

#include "runtime/chat/jinja/ast.h"

namespace tandem::jinja {

inline constexpr int kMaxParseDepth = 128;

Program parse(std::string_view source);

}  // namespace tandem::jinja
