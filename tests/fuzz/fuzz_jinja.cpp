// Fuzzes the Jinja chat-template interpreter: the input is a template, parsed and rendered over
// a typical chat context with tight limits. Errors are fine; crashes, hangs and leaks are not.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/chat/jinja/interpreter.h"
#include "runtime/chat/jinja/parser.h"
#include "runtime/core/error.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const jinja::Value context = jinja::Value::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "<think>x</think>Hello"}, {"role": "user", "content": "2+2?"}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": []})"));
  jinja::Limits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 200000;
  limits.max_range = 10000;
  try {
    const jinja::Program program = jinja::parse(text);
    jinja::render(program, context, limits, [] { return int64_t(0); });
  } catch (const Error&) {
  }
  return 0;
}
