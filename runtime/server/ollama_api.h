// The JSON of the Ollama API (what ollama-js, Open WebUI and the ollama CLI read): the served
// model as /api/tags, /api/show and /api/ps describe it, and the objects /api/chat and
// /api/generate stream as NDJSON (one object per line, the last with done: true and the
// timings in nanoseconds). Errors are {"error": "message"}.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tandem {
class GgufFile;
}

namespace tandem::server {

// The served model in Ollama's terms.
struct OllamaModel {
  std::string name;                // "NAME:latest" unless the name has a tag
  int64_t size = 0;                // bytes of the GGUF file(s)
  int64_t modified_at = 0;         // Unix seconds
  std::string digest;              // 64 hex digits, stable for one file (not its SHA-256)
  std::string family;              // general.architecture
  std::string parameter_size;      // "15.7B"
  std::string quantization_level;  // the type of most weight bytes: "Q4_K", "Q8_0", ...
  std::string template_text;       // tokenizer.chat_template ("" when none)
  int64_t context_length = 0;      // the context the server runs with
  bool thinking = false;           // the template or model reasons in <think>
  nlohmann::json model_info = nlohmann::json::object();  // the GGUF's scalar keys
};

// From the GGUF (its path, sizes, keys and tensors). served_name: the name clients use.
OllamaModel describe_ollama_model(const GgufFile& file, const std::string& served_name, int64_t context_length);
// A model known only by name (no file): for servers built without one.
OllamaModel ollama_model_named(const std::string& served_name);

// Ollama's names: "x" and "x:latest" are one model.
bool ollama_model_matches(const OllamaModel& m, std::string_view requested);

std::string ollama_timestamp(std::chrono::system_clock::time_point t);  // RFC 3339, UTC, nanoseconds

nlohmann::json ollama_version_json();                      // GET /api/version
nlohmann::json ollama_tags_json(const OllamaModel& m);     // GET /api/tags
nlohmann::json ollama_show_json(const OllamaModel& m);     // POST /api/show
nlohmann::json ollama_ps_json(const OllamaModel& m);       // GET /api/ps
nlohmann::json ollama_error_json(const std::string& message);

struct OllamaTimings {
  int64_t total_ns = 0, load_ns = 0, prompt_eval_ns = 0, eval_ns = 0;
  int64_t prompt_eval_count = 0, eval_count = 0;
};

// One streamed object (done: false) of /api/chat (chat) or /api/generate: content and, when
// not empty, thinking.
nlohmann::json ollama_chunk_json(bool chat, const std::string& model, std::string_view content,
                                 std::string_view thinking);
// The last object (done: true): with stream false it carries the whole reply.
nlohmann::json ollama_final_json(bool chat, const std::string& model, std::string_view content,
                                 std::string_view thinking, std::string_view done_reason, const OllamaTimings& t);

}  // namespace tandem::server
