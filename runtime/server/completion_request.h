// The bodies of POST /v1/chat/completions and POST /v1/completions, parsed and checked into a
// typed request. The body is untrusted: anything malformed, out of range or asking for a
// feature tandem does not have (tools, n > 1, logprobs, JSON mode, ...) is a RequestError
// (400) whose param names the field. Fields the OpenAI API defines but that change nothing
// here (user, metadata, store, ...) and fields of other vendors are ignored, so existing
// clients keep working. Model-dependent checks (prompt length, token ids) happen later, in the
// Generator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/sampling/json_grammar.h"

namespace tandem::server {

// Sampling fields as the client sent them; unset ones take the server's defaults.
struct SamplingFields {
  std::optional<float> temperature;        // [0, 2]; 0: greedy
  std::optional<float> top_p;              // (0, 1]
  std::optional<int> top_k;                // >= 0; 0: off (llama.cpp extension)
  std::optional<float> min_p;              // [0, 1) (llama.cpp extension)
  std::optional<float> presence_penalty;   // [-2, 2]
  std::optional<float> frequency_penalty;  // [-2, 2]
  std::optional<float> repeat_penalty;     // > 0 (llama.cpp extension)
  std::optional<uint64_t> seed;            // unset (or -1): a random seed per request
};

enum class RequestKind { Chat, Text };

// tool_choice: none hides the tools from the model; required / a named function forces a call.
enum class ToolChoice { Auto, None, Required, Named };

inline constexpr size_t kMaxTools = 128;
inline constexpr size_t kMaxSchemaBytes = 64 * 1024;  // a response_format or parameters schema

struct CompletionRequest {
  RequestKind kind = RequestKind::Chat;
  std::string model;                  // as sent (any name: one model is served)
  std::vector<ChatMessage> messages;  // Chat: roles system/user/assistant ("developer" -> system)
  // Text: the prompt as text, or as token ids (checked against the vocabulary later).
  std::variant<std::string, std::vector<int64_t>> prompt;
  std::optional<int64_t> max_tokens;  // >= 1; unset: until a stop or the context is full
  std::vector<std::string> stop;      // at most kMaxStopStrings, none empty
  SamplingFields sampling;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage: a last chunk with usage
  // Chat: a reply's <think>...</think> goes to reasoning_content (false: reasoning_format
  // "none", the text stays inline); unset: the server's --reasoning-format.
  std::optional<bool> split_reasoning;
  // Chat: the template's thinking switch (enable_thinking / thinking variables); unset: the
  // template's default.
  std::optional<bool> enable_thinking;
  // Chat: the functions the model may call (tools), and how it may.
  std::vector<ToolFunction> tools;
  ToolChoice tool_choice = ToolChoice::Auto;
  std::string tool_choice_name;  // ToolChoice::Named
  // Structured output (response_format json_object / json_schema, Ollama format): the grammar
  // the reply is sampled under; null: free text.
  std::shared_ptr<const JsonGrammar> grammar;
  bool tools_active() const { return !tools.empty() && tool_choice != ToolChoice::None; }
};

// The grammar of a JSON Schema from a request; RequestError (400, param) naming what it refuses.
std::shared_ptr<const JsonGrammar> request_schema_grammar(const nlohmann::json& schema, const std::string& param);

inline constexpr size_t kMaxStopStrings = 16;

// Both throw RequestError (400) naming the field; invalid JSON and a non-object body too.
CompletionRequest parse_chat_completion_request(std::string_view body);
CompletionRequest parse_text_completion_request(std::string_view body);

}  // namespace tandem::server
