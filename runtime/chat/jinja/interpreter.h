// Runs a parsed chat template (parser.h) over a context of values and returns the text.
//
// The subset covered, which is what the chat templates of DeepSeek V2/V2.5/V3/R1, Qwen2/2.5/3
// and Llama 3/3.1 use (the real ones are in tests/unit/chat/templates, rendered byte for byte
// like the hand-written renderers by chat_template_jinja_test):
//   text, {{ expr }}, {# comments #}, whitespace control (-, +; trim_blocks and lstrip_blocks on
//   as transformers sets them); {% if/elif/else %}, {% for x in xs [if cond] %}..{% else %}
//   with loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem,
//   {% break %}/{% continue %}; {% set x = .. %}, {% set a, b = .. %}, {% set ns.attr = .. %},
//   {% set x %}..{% endset %}; {% macro %} with defaults and keyword arguments;
//   {% generation %} (renders its body).
//   Literals (strings, ints, floats, true/false/none in either case, lists, tuples, dicts);
//   operators or and not, in / not in, == != < > <= >=, + - * / // % ** ~, unary - +,
//   `a if c else b`, indexing (negative too), slicing [a:b:c], attribute access (a.b reads
//   the key b of a dict), calls.
//   Globals: range, namespace, raise_exception, strftime_now, dict.
//   Filters: trim, length/count, tojson(indent), default/d(value, boolean), upper, lower,
//   capitalize, title, replace, join, string, int, float, abs, round, first, last, list,
//   reverse, sort, unique, items, dictsort, selectattr, rejectattr, select, reject, map
//   (attribute= or a filter name), indent, safe, batch is not.
//   Tests: defined, undefined, none, string, mapping, sequence, iterable, number, integer,
//   float, boolean, true, false, callable, equalto/eq/==, ne/!=, lt/gt/le/ge, sameas, in,
//   odd, even, divisibleby, lower, upper.
//   Methods: strings .startswith .endswith (a tuple too) .strip .lstrip .rstrip .split .rsplit
//   .replace .lower .upper .title .capitalize .find .count .join .splitlines; dicts .items
//   .keys .values .get; nothing that mutates (transformers' sandbox forbids it too).
// Not covered: extends/blocks/include/import, call blocks, filter blocks, recursive loops,
// autoescape, `%` string formatting. Strings index and slice by code point, as in Python.
//
// Hostile templates: every limit below ends rendering with an Error (naming line and column),
// never a crash, hang or unbounded memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "runtime/chat/jinja/ast.h"
#include "runtime/chat/jinja/value.h"

namespace tandem::jinja {

struct Limits {
  size_t max_output_bytes = 64u << 20;  // the rendered text, and any one string value
  uint64_t max_steps = 50'000'000;      // nodes evaluated plus loop iterations plus bytes/64 built
  int max_call_depth = 64;              // macro calls inside macro calls
  int64_t max_range = 1'000'000;        // elements range() may make
};

struct Callable {
  // Positional and keyword arguments; returns the result.
  std::function<Value(std::vector<Value>&, std::vector<std::pair<std::string, Value>>&)> fn;
  bool builtin = false;  // its Errors get the call's line and column
};

// The current time for strftime_now; tests pass a fixed one. Default: the system clock.
using Clock = std::function<int64_t()>;  // seconds since the epoch, UTC

// Renders program with the variables of context (a mapping). Error on any runtime error
// (unknown filter, bad operand types, raise_exception, a limit).
std::string render(const Program& program, const Value& context, const Limits& limits = {}, Clock clock = {});

}  // namespace tandem::jinja
