#include "runtime/server/openai_response.h"

#include <random>

namespace tandem::server {

using nlohmann::json;

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::ToolCalls: return "tool_calls";
  }
  return "stop";
}

std::string new_response_id(bool chat) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* const hex = "0123456789abcdef";
  std::string id = chat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

namespace {

json envelope(const ResponseMeta& m, const char* object) {
  return {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}};
}

json finish_value(std::optional<FinishReason> f) {
  return f ? json(std::string(finish_reason_name(*f))) : json(nullptr);
}

}  // namespace

std::string new_tool_call_id() {
  std::string id = new_response_id(false);  // "cmpl-" + 24 hex digits
  return "call_" + id.substr(5);
}

json tool_call_delta_json(size_t index, const ToolCall& call) {
  return {{"index", index},
          {"id", call.id},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

json chat_completion_json(const ResponseMeta& m, std::string_view content, FinishReason finish, const Usage& usage,
                          std::string_view reasoning, std::span<const ToolCall> tool_calls) {
  json j = envelope(m, "chat.completion");
  json message = {{"role", "assistant"}, {"content", std::string(content)}};
  if (!reasoning.empty()) message["reasoning_content"] = std::string(reasoning);
  if (!tool_calls.empty()) {
    if (content.empty()) message["content"] = nullptr;
    json calls = json::array();
    for (const auto& c : tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    message["tool_calls"] = std::move(calls);
  }
  j["choices"] = json::array({json{{"index", 0},
                                   {"message", std::move(message)},
                                   {"logprobs", nullptr},
                                   {"finish_reason", finish_value(finish)}}});
  j["usage"] = usage_json(usage);
  return j;
}

json chat_chunk_json(const ResponseMeta& m, json delta, std::optional<FinishReason> finish,
                     const std::optional<Usage>& usage) {
  json j = envelope(m, "chat.completion.chunk");
  j["choices"] = json::array(
      {json{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish_value(finish)}}});
  if (usage) j["usage"] = usage_json(*usage);
  return j;
}

json text_completion_json(const ResponseMeta& m, std::string_view text, FinishReason finish, const Usage& usage) {
  json j = envelope(m, "text_completion");
  j["choices"] = json::array(
      {json{{"index", 0}, {"text", std::string(text)}, {"logprobs", nullptr}, {"finish_reason", finish_value(finish)}}});
  j["usage"] = usage_json(usage);
  return j;
}

json text_chunk_json(const ResponseMeta& m, std::string_view text, std::optional<FinishReason> finish,
                     const std::optional<Usage>& usage) {
  json j = envelope(m, "text_completion");
  j["choices"] = json::array(
      {json{{"index", 0}, {"text", std::string(text)}, {"logprobs", nullptr}, {"finish_reason", finish_value(finish)}}});
  if (usage) j["usage"] = usage_json(*usage);
  return j;
}

json usage_chunk_json(const ResponseMeta& m, bool chat, const Usage& usage) {
  json j = envelope(m, chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return j;
}

json model_json(const std::string& model, int64_t created) {
  return {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "tandem"}};
}

json model_list_json(const std::string& model, int64_t created) {
  return {{"object", "list"}, {"data", json::array({model_json(model, created)})}};
}

std::string to_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + to_text(j) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

}  // namespace tandem::server
