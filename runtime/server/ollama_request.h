// The bodies of Ollama's POST /api/chat and POST /api/generate, parsed into the CompletionRequest
// the OpenAI endpoints use. The body is untrusted: the Ollama fields are translated into their
// OpenAI equivalents and checked by the same parser, so ranges and messages match; an error
// about an option names it as options.NAME. Unknown options and fields with no meaning here
// (num_ctx, num_thread, keep_alive, context, ...) are accepted and ignored; format ("json" or a
// schema) becomes response_format, tools and tool messages pass as their OpenAI equivalents;
// features tandem lacks (images, a custom template, suffix) are a RequestError (400).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/server/completion_request.h"

namespace tandem::server {

struct OllamaRequest {
  std::string model;           // required by Ollama (400 when missing)
  bool load_only = false;      // no messages / empty prompt: Ollama's "load the model" request
  std::optional<bool> think;   // true: reasoning to message.thinking; false: no reasoning shown
  CompletionRequest request;   // stream defaults to true here, as in Ollama
};

// Both throw RequestError (400) naming the field; invalid JSON and a non-object body too.
OllamaRequest parse_ollama_chat_request(std::string_view body);
OllamaRequest parse_ollama_generate_request(std::string_view body);

// POST /api/show's model name: "model", or the older "name". RequestError when neither.
std::string parse_ollama_show_request(std::string_view body);

}  // namespace tandem::server
