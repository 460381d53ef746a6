// The JSON objects the server answers with, in the shapes of the OpenAI API: whole completions,
// streamed chunks (Server-Sent Events), usage counts, the model list. Generated text may hold
// bytes that are not valid UTF-8 (a model can emit any byte); serialization replaces those
// with U+FFFD instead of failing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/chat/tool_calls.h"

namespace tandem::server {

enum class FinishReason {
  Stop,       // an end-of-turn / EOS token or a stop string
  Length,     // max_tokens reached or the context is full
  ToolCalls,  // the reply called tools
};
std::string_view finish_reason_name(FinishReason r);  // "stop", "length", "tool_calls"

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// What every object of one response repeats.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;    // the served model's name
};

// "chatcmpl-" or "cmpl-" followed by 24 random hex digits.
std::string new_response_id(bool chat);

nlohmann::json usage_json(const Usage& u);

// POST /v1/chat/completions, stream false. A non-empty reasoning goes to
// message.reasoning_content (DeepSeek's field, read by the OpenAI SDKs' users and Open WebUI).
// Tool calls go to message.tool_calls (arguments as a JSON string); content is then null when
// empty.
nlohmann::json chat_completion_json(const ResponseMeta& m, std::string_view content, FinishReason finish,
                                    const Usage& usage, std::string_view reasoning = {},
                                    std::span<const ToolCall> tool_calls = {});
// delta.tool_calls for one call: {"index", "id", "type", "function": {"name", "arguments"}}.
nlohmann::json tool_call_delta_json(size_t index, const ToolCall& call);
// "call_" followed by 24 random hex digits.
std::string new_tool_call_id();
// One streamed chat chunk: delta is {"role": "assistant", "content": ""} first, then
// {"content": text}, then {} with the finish reason (and usage).
nlohmann::json chat_chunk_json(const ResponseMeta& m, nlohmann::json delta,
                               std::optional<FinishReason> finish = std::nullopt,
                               const std::optional<Usage>& usage = std::nullopt);

// POST /v1/completions, stream false / one streamed chunk.
nlohmann::json text_completion_json(const ResponseMeta& m, std::string_view text, FinishReason finish,
                                    const Usage& usage);
nlohmann::json text_chunk_json(const ResponseMeta& m, std::string_view text,
                               std::optional<FinishReason> finish = std::nullopt,
                               const std::optional<Usage>& usage = std::nullopt);

// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseMeta& m, bool chat, const Usage& usage);

// GET /v1/models, GET /v1/models/{id}.
nlohmann::json model_list_json(const std::string& model, int64_t created);
nlohmann::json model_json(const std::string& model, int64_t created);

// Compact JSON; invalid UTF-8 in strings becomes U+FFFD.
std::string to_text(const nlohmann::json& j);
// One Server-Sent Event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);
// The stream's end marker: "data: [DONE]\n\n".
std::string sse_done();

}  // namespace tandem::server
