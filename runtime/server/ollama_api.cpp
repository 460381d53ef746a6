#include "runtime/server/ollama_api.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>

#include "runtime/gguf/gguf_file.h"

namespace tandem::server {
namespace {

using nlohmann::json;

// "15.7B", "236M": Ollama's short form of a parameter count.
std::string short_count(double n) {
  char buf[32];
  if (n >= 1e9)
    std::snprintf(buf, sizeof buf, "%.1fB", n / 1e9);
  else if (n >= 1e6)
    std::snprintf(buf, sizeof buf, "%.0fM", n / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0fK", n / 1e3);
  return buf;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string with_tag(const std::string& name) { return name.find(':') == std::string::npos ? name + ":latest" : name; }

// 64 hex digits from a few facts about the file: stable while the file is, cheap to compute
// (hashing a many-gigabyte file at every start would not be).
std::string pseudo_digest(const std::string& seed) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(seed + char('0' + i)));
    out += buf;
  }
  return out;
}

json details_json(const OllamaModel& m) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", m.family},
          {"families", json::array({m.family})},
          {"parameter_size", m.parameter_size},
          {"quantization_level", m.quantization_level}};
}

json capabilities_json(const OllamaModel& m) {
  json c = json::array({"completion"});
  if (m.thinking) c.push_back("thinking");
  return c;
}

std::string iso_seconds(int64_t unix_seconds) {
  return ollama_timestamp(std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)));
}

}  // namespace

OllamaModel ollama_model_named(const std::string& served_name) {
  OllamaModel m;
  m.name = with_tag(served_name);
  m.modified_at = int64_t(std::time(nullptr));
  m.digest = pseudo_digest(served_name);
  m.family = "unknown";
  return m;
}

OllamaModel describe_ollama_model(const GgufFile& file, const std::string& served_name, int64_t context_length) {
  namespace fs = std::filesystem;
  OllamaModel m = ollama_model_named(served_name);
  std::error_code ec;
  int64_t newest = 0;
  for (const auto& shard : file.shard_paths()) {
    const auto bytes = fs::file_size(shard, ec);
    if (!ec) m.size += int64_t(bytes);
    const auto when = fs::last_write_time(shard, ec);
    if (!ec) {
      const auto sys = std::chrono::file_clock::to_sys(when);
      newest = std::max<int64_t>(newest, std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count());
    }
  }
  if (newest > 0) m.modified_at = newest;
  m.digest = pseudo_digest(file.path() + "|" + std::to_string(m.size) + "|" + std::to_string(m.modified_at));
  m.family = file.get_string_opt("general.architecture").value_or("unknown");
  m.template_text = file.get_string_opt("tokenizer.chat_template").value_or("");
  m.context_length = context_length;
  m.thinking = m.template_text.find("<think>") != std::string::npos;

  double params = 0;
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : file.tensors()) {
    params += double(t.elements());
    if (t.shape.size() >= 2) bytes_by_type[upper(ggml_type_name(t.type))] += t.nbytes;
  }
  if (const auto* pc = file.find("general.parameter_count"))
    if (const auto n = pc->as_number()) params = *n;
  m.parameter_size = short_count(params);
  uint64_t most = 0;
  for (const auto& [type, bytes] : bytes_by_type)
    if (bytes > most) most = bytes, m.quantization_level = type;

  // Scalars and strings only: the vocabulary arrays would make the answer megabytes long
  // (Ollama leaves them out too unless asked).
  for (const auto& [key, value] : file.metadata()) {
    if (key == "tokenizer.chat_template") continue;  // it is "template"
    if (const auto* s = value.as_string())
      m.model_info[key] = *s;
    else if (value.type == GgufValueType::BOOL)
      m.model_info[key] = std::get<bool>(value.v);
    else if (value.is_float())
      m.model_info[key] = std::get<double>(value.v);
    else if (const auto i = value.as_int())
      m.model_info[key] = *i;
    else if (value.as_array())
      m.model_info[key] = nullptr;  // present, not listed
  }
  if (!m.model_info.contains("general.parameter_count")) m.model_info["general.parameter_count"] = int64_t(params);
  return m;
}

bool ollama_model_matches(const OllamaModel& m, std::string_view requested) {
  return requested == m.name || with_tag(std::string(requested)) == m.name;
}

std::string ollama_timestamp(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)(ns % 1000000000));
  return buf;
}

// The Ollama API level the endpoints follow (clients gate features such as think on it).
json ollama_version_json() { return {{"version", "0.12.0"}}; }

json ollama_tags_json(const OllamaModel& m) {
  return {{"models", json::array({json{{"name", m.name},
                                       {"model", m.name},
                                       {"modified_at", iso_seconds(m.modified_at)},
                                       {"size", m.size},
                                       {"digest", m.digest},
                                       {"details", details_json(m)},
                                       {"capabilities", capabilities_json(m)}}})}};
}

json ollama_show_json(const OllamaModel& m) {
  json info = m.model_info;
  if (m.context_length > 0) info[m.family + ".context_length"] = m.context_length;
  return {{"license", ""},
          {"modelfile", "# served by tandem\nFROM " + m.name + "\n"},
          {"parameters", "num_ctx " + std::to_string(m.context_length)},
          {"template", m.template_text},
          {"details", details_json(m)},
          {"model_info", std::move(info)},
          {"capabilities", capabilities_json(m)},
          {"modified_at", iso_seconds(m.modified_at)}};
}

json ollama_ps_json(const OllamaModel& m) {
  // Loaded for as long as the server runs: expires_at far ahead.
  return {{"models", json::array({json{{"name", m.name},
                                       {"model", m.name},
                                       {"size", m.size},
                                       {"digest", m.digest},
                                       {"details", details_json(m)},
                                       {"expires_at", "2318-01-01T00:00:00Z"},
                                       {"size_vram", 0},
                                       {"context_length", m.context_length}}})}};
}

json ollama_error_json(const std::string& message) { return {{"error", message}}; }

json ollama_chunk_json(bool chat, const std::string& model, std::string_view content, std::string_view thinking) {
  json j = {{"model", model}, {"created_at", ollama_timestamp(std::chrono::system_clock::now())}};
  if (chat) {
    json message = {{"role", "assistant"}, {"content", std::string(content)}};
    if (!thinking.empty()) message["thinking"] = std::string(thinking);
    j["message"] = std::move(message);
  } else {
    j["response"] = std::string(content);
    if (!thinking.empty()) j["thinking"] = std::string(thinking);
  }
  j["done"] = false;
  return j;
}

json ollama_final_json(bool chat, const std::string& model, std::string_view content, std::string_view thinking,
                       std::string_view done_reason, const OllamaTimings& t) {
  json j = ollama_chunk_json(chat, model, content, thinking);
  j["done"] = true;
  j["done_reason"] = std::string(done_reason);
  j["total_duration"] = t.total_ns;
  j["load_duration"] = t.load_ns;
  j["prompt_eval_count"] = t.prompt_eval_count;
  j["prompt_eval_duration"] = t.prompt_eval_ns;
  j["eval_count"] = t.eval_count;
  j["eval_duration"] = t.eval_ns;
  return j;
}

}  // namespace tandem::server
