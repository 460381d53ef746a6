// Renders a conversation into prompt text. The model's own template (tokenizer.chat_template,
// or --chat-template-file) runs through the Jinja subset interpreter (jinja/interpreter.h);
// when it uses something outside that subset, or with --chat-format, a hand-written renderer
// of the detected format (chat_format.h) is used instead. The text includes the BOS text where
// the template writes bos_token, so it is meant to be encoded with add_special = false and
// parse_special = true.
//
// The hand-written formats follow their models' official templates for plain
// system/user/assistant turns; DeepSeek V3/R1's also render tool calls and results (as the V3
// template does); the other families' tool calls and results need the Jinja path.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/chat/chat_format.h"
#include "runtime/chat/tool_calls.h"

namespace tandem {

class GgufFile;
class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant: the calls it made
  std::string tool_call_id;          // tool: the call this answers
  std::string name;                  // tool: the function's name, when given
};

namespace jinja {
struct Program;
}

struct ChatTemplateOptions {
  std::string format_name;    // --chat-format: this hand-written format, not the model's template
  std::string template_file;  // --chat-template-file: Jinja text that replaces tokenizer.chat_template
};

class ChatTemplate {
 public:
  // A hand-written renderer. bos_text / eos_text: the texts of the vocabulary's BOS and EOS
  // tokens ("" when it has none).
  ChatTemplate(ChatFormat format, std::string bos_text, std::string eos_text);

  // A Jinja template (source_name names it in messages: "tokenizer.chat_template", a path).
  // Parse errors are an Error naming source_name, line and column. format gives the
  // end-of-turn tokens (and is what a caller may fall back to).
  static ChatTemplate from_jinja(std::string_view source, std::string source_name, ChatFormat format,
                                 std::string bos_text, std::string eos_text);

  // The model's template: the Jinja text of options.template_file or tokenizer.chat_template,
  // or the hand-written options.format_name. A template that does not parse or does not render
  // a probe conversation falls back to the hand-written renderer of its detected format, with a
  // one-line reason in *warning (cleared otherwise); for --chat-template-file that is an Error.
  static ChatTemplate for_model(const GgufFile& file, const Tokenizer& tokenizer, const ChatTemplateOptions& options,
                                std::string* warning);
  // for_model's choice on a template text (nullopt: the model has none) named source_name;
  // strict: a template that fails is an Error rather than a fallback.
  static ChatTemplate from_model_text(const std::optional<std::string>& text, const std::string& source_name,
                                      bool strict, bool vocab_has_deepseek3_tokens, std::string bos_text,
                                      std::string eos_text, std::string* warning);
  // Reads, parses and probe-renders a --chat-template-file (before a slow model load): an
  // Error naming the file, and the line and column of a syntax error.
  static void check_template_file(const std::string& path);
  // Same, with only --chat-format (override_name; empty: none).
  static ChatTemplate for_model(const GgufFile& file, const Tokenizer& tokenizer, std::string_view override_name,
                                std::string* warning);

  ChatFormat format() const { return format_; }
  std::string_view name() const { return chat_format_name(format_); }
  // True when the Jinja template renders (else the hand-written format does).
  bool uses_jinja() const { return program_ != nullptr; }
  // "the model's template (tokenizer.chat_template)", "hand-written deepseek3", ...
  std::string description() const;

  // The prompt for messages; add_generation_prompt appends the opening of an assistant turn.
  // Hand-written: a role other than system/user/assistant is an Error naming the message and
  // the role. Jinja: the template decides (its raise_exception is an Error with its message).
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

  // The API the server uses: messages as OpenAI-style JSON objects (role, content, and any of
  // tool_calls, tool_call_id, name, reasoning_content the template reads), and extra template
  // variables (tools, enable_thinking, ...; an object, or null). The hand-written renderer
  // reads only role and string content and refuses tools.
  std::string render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const nlohmann::ordered_json& variables = nullptr) const;

  // How replies spell tool calls in this template (read off its text), and whether the
  // template renders the `tools` variable itself (else the server describes them in a system
  // message).
  ToolCallFormat tool_call_format() const { return tool_format_; }
  bool renders_tools() const { return renders_tools_; }
  // The messages as the template reads them: tool_calls with arguments as the family wants
  // them (a string for DeepSeek, an object for Qwen and Llama), content null for an assistant
  // message that only calls tools, tool_call_id on tool messages.
  nlohmann::ordered_json messages_json(std::span<const ChatMessage> messages) const;

  // Texts of the tokens that end an assistant turn in this format (the EOS text included when
  // the format uses it). Map them to ids with the vocabulary; some may not exist there.
  std::vector<std::string> end_of_turn_texts() const;
  // Those texts' ids in the tokenizer's vocabulary and its EOS, each once: the tokens that end
  // a reply (chat and the server sample until one of them).
  std::vector<int32_t> end_of_generation_tokens(const Tokenizer& tokenizer) const;

 private:
  std::string render_hand_written(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  std::string render_deepseek_tools(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

  ChatFormat format_;
  std::string bos_;
  std::string eos_;
  std::shared_ptr<const jinja::Program> program_;  // null: hand-written
  std::string source_name_;
  ToolCallFormat tool_format_ = ToolCallFormat::None;
  bool renders_tools_ = false;
};

}  // namespace tandem
