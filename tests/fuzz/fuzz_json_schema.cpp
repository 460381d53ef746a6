// Fuzzes the JSON Schema compiler and the automaton it builds (runtime/sampling/json_grammar.h,
// json_automaton.h): the schema of a response_format or of a tool's parameters is untrusted.
// Input layout: a JSON schema, a NUL byte, then text fed to the automaton byte by byte.
// Checked: compile_json_schema either returns a grammar or throws SchemaError (nothing else);
// the automaton never accepts a byte after it died, complete() implies distance() == 0, and a
// text it accepts as complete parses as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/sampling/json_automaton.h"
#include "runtime/sampling/json_grammar.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view schema_text = in.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
  bool too_deep = false;
  const nlohmann::json::parser_callback_t guard = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > 32) too_deep = true;
    return !too_deep;
  };
  nlohmann::json schema;
  try {
    schema = nlohmann::json::parse(schema_text.begin(), schema_text.end(), guard);
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  if (too_deep) return 0;
  std::shared_ptr<const tandem::JsonGrammar> g;
  try {
    g = tandem::compile_json_schema(schema);
  } catch (const tandem::SchemaError&) {
    return 0;
  }
  tandem::JsonAutomaton a(g);
  std::string accepted;
  for (char c : text) {
    if (!a.feed(uint8_t(c))) {
      check(a.dead());
      check(!a.feed(uint8_t('x')));
      return 0;
    }
    accepted += c;
    if (a.complete()) check(a.distance() == 0);
  }
  if (a.complete() && !accepted.empty()) {
    try {
      (void)nlohmann::json::parse(accepted);
    } catch (const nlohmann::json::exception&) {
      check(false);
    }
  }
  return 0;
}
