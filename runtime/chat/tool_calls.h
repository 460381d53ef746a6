// Tool calls in each model family's own format: how a reply spells a call, how to force one
// (a JsonGrammar for constrained sampling), and a parser that takes the calls out of a reply as
// it streams.
//   DeepSeek V3 / R1: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//   DeepSeek V3.1:    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//   Qwen 2.5 / 3 (Hermes style): <tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call>
//   Llama 3: the whole reply is {"name": NAME, "parameters": ARGS} (optionally after <|python_tag|>)
// The format is read off the chat template: its text says how it writes earlier calls.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_format.h"
#include "runtime/sampling/json_grammar.h"

namespace tandem {

enum class ToolCallFormat { None, DeepseekV3, DeepseekV31, Qwen, Llama3 };
std::string_view tool_call_format_name(ToolCallFormat f);

// template_source: the Jinja text ("" for a hand-written format).
ToolCallFormat detect_tool_call_format(ChatFormat format, std::string_view template_source);
// DeepSeek's templates take arguments as a JSON string, the others as an object.
bool tool_arguments_as_object(ToolCallFormat f);

struct ToolCall {
  std::string id;         // "call_..." (given by the server)
  std::string name;
  std::string arguments;  // JSON text (compact when it parsed)
};

struct ToolFunction {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // a JSON Schema (an object schema); null: none given
};

// A system-prompt text that lists the tools and shows the call format, for templates that do
// not render `tools` themselves (DeepSeek V3/R1's).
std::string tools_system_text(ToolCallFormat f, std::span<const ToolFunction> tools);

// The grammar of a reply that is one call, in format f, of one of tools (only_name: of that
// one), with arguments valid against its parameters. SchemaError names the parameters path
// ("tools[i].function.parameters...").
std::shared_ptr<const JsonGrammar> tool_call_grammar(ToolCallFormat f, std::span<const ToolFunction> tools,
                                                     const std::string& only_name = "");

// Splits a reply (its content, after any reasoning) into text and calls as it streams. Markup
// split across chunks is held back until it can be told apart; text between calls that is
// only whitespace is dropped. A call whose markup never closes comes back as text at finish().
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);

  struct Piece {
    std::string content;
    std::vector<ToolCall> calls;  // id empty
  };
  Piece push(std::string_view text);
  Piece finish();
  bool saw_calls() const { return calls_ > 0; }

 private:
  std::optional<ToolCall> parse_body(std::string_view body) const;
  void emit_content(Piece& out, std::string_view text);

  ToolCallFormat format_;
  std::string held_;
  bool in_call_ = false;
  bool started_ = false;     // Llama 3: the reply's first character was seen
  bool buffering_ = false;   // Llama 3: the reply may be one JSON call: held to the end
  std::string pending_ws_;   // whitespace after a call, dropped unless text follows
  size_t calls_ = 0;
};

}  // namespace tandem
