#include "runtime/server/ollama_request.h"

#include <nlohmann/json.hpp>

#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 32;  // as for the OpenAI bodies: bounds parse work

[[noreturn]] void reject(const std::string& param, const std::string& message) {
  throw RequestError::invalid(param, message);
}

json parse_body(std::string_view body) {
  bool too_deep = false;
  const json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  json j;
  try {
    j = json::parse(body.begin(), body.end(), depth_guard);
  } catch (const json::exception& e) {
    reject("", std::string("the request body is not valid JSON: ") + e.what());
  }
  if (too_deep) reject("", "the request body nests deeper than " + std::to_string(kMaxDepth) + " levels");
  if (!j.is_object()) reject("", std::string("the request body must be a JSON object, not ") + j.type_name());
  return j;
}

const json* get(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& obj, const char* name) {
  const json* v = get(obj, name);
  if (!v) return "";
  if (!v->is_string()) reject(name, std::string(name) + " must be a string, not " + v->type_name());
  return v->get<std::string>();
}

void refuse_nonempty(const json& obj, const char* name, const std::string& path, const std::string& what) {
  const json* v = get(obj, name);
  if (!v) return;
  if ((v->is_array() || v->is_object() || v->is_string()) && v->empty()) return;
  reject(path, what + " is not supported by this server");
}

// The Ollama options (and top-level fields) that map onto OpenAI fields, by the OpenAI name.
void translate_options(const json& b, json& openai) {
  const json* o = get(b, "options");
  if (!o) return;
  if (!o->is_object()) reject("options", std::string("options must be an object, not ") + o->type_name());
  for (const char* name : {"temperature", "top_k", "top_p", "min_p", "seed", "stop", "repeat_penalty",
                           "presence_penalty", "frequency_penalty"})
    if (const json* v = get(*o, name)) openai[name] = *v;
  if (const json* n = get(*o, "num_predict")) {
    // -1: until a stop; -2: until the context is full; both are "no limit" here.
    if (!n->is_number_integer()) reject("options.num_predict", std::string("options.num_predict must be an integer, not ") + n->type_name());
    if (n->get<int64_t>() > 0) openai["max_tokens"] = *n;
  }
}

// Runs the OpenAI parser; errors about an option are renamed options.NAME.
template <typename Parse>
CompletionRequest parse_translated(const json& openai, const json& ollama, Parse parse) {
  try {
    return parse(openai.dump());
  } catch (const RequestError& e) {
    const json* o = get(ollama, "options");
    const std::string& p = e.param();
    // format went in as response_format: errors about it name format.
    if (p.starts_with("response_format") && get(ollama, "format")) {
      constexpr std::string_view kSchema = "response_format.json_schema.schema";
      std::string message = e.what();
      for (size_t at; (at = message.find(kSchema)) != std::string::npos;) message.replace(at, kSchema.size(), "format");
      const std::string param = p.starts_with(kSchema) ? "format" + p.substr(kSchema.size()) : "format";
      throw RequestError(e.status(), e.type(), param, e.code(), message);
    }
    const std::string head = p.substr(0, p.find('['));
    if (o && o->is_object() && !p.empty() && o->contains(head == "max_tokens" ? "num_predict" : head)) {
      std::string message = e.what();
      message = message.starts_with(p) ? "options." + message : "options." + p + ": " + message;
      throw RequestError(e.status(), e.type(), "options." + p, e.code(), message);
    }
    throw;
  }
}

void read_shared(const json& b, OllamaRequest& r, json& openai) {
  r.model = get_string(b, "model");
  if (r.model.empty()) reject("model", "model is required");
  const json* s = get(b, "stream");
  if (s && !s->is_boolean()) reject("stream", std::string("stream must be a boolean, not ") + s->type_name());
  openai["stream"] = s ? s->get<bool>() : true;
  if (const json* t = get(b, "think")) {
    // A level ("low", "medium", "high") asks for thinking too.
    if (t->is_boolean())
      r.think = t->get<bool>();
    else if (t->is_string())
      r.think = true;
    else
      reject("think", std::string("think must be a boolean or a level, not ") + t->type_name());
  }
  // format: "json" or a JSON Schema object; structured output as response_format.
  if (const json* f = get(b, "format")) {
    if (f->is_string()) {
      if (*f == "json")
        openai["response_format"] = {{"type", "json_object"}};
      else if (!f->get_ref<const std::string&>().empty())
        reject("format", "format must be \"json\" or a JSON Schema object, got " + f->dump());
    } else if (f->is_object()) {
      openai["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "format"}, {"schema", *f}}}};
    } else {
      reject("format", std::string("format must be \"json\" or a JSON Schema object, not ") + f->type_name());
    }
  }
  if (const json* t = get(b, "tools")) openai["tools"] = *t;  // Ollama's tools have OpenAI's shape
  translate_options(b, openai);
}

void apply_think(OllamaRequest& r) {
  if (r.think) r.request.enable_thinking = *r.think;
  r.request.split_reasoning = true;
}

}  // namespace

OllamaRequest parse_ollama_chat_request(std::string_view body) {
  const json b = parse_body(body);
  OllamaRequest r;
  json openai = json::object();
  read_shared(b, r, openai);
  const json* ms = get(b, "messages");
  if (ms && !ms->is_array()) reject("messages", std::string("messages must be an array, not ") + ms->type_name());
  if (!ms || ms->empty()) {
    r.load_only = true;
    r.request.stream = openai["stream"].get<bool>();
    return r;
  }
  json messages = json::array();
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string path = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) reject(path, path + " must be an object, not " + m.type_name());
    refuse_nonempty(m, "images", path + ".images", path + ".images (image input)");
    json one = json::object();
    for (const char* k : {"role", "content", "tool_calls", "tool_call_id"})
      if (m.contains(k)) one[k] = m[k];
    if (m.contains("tool_name")) one["name"] = m["tool_name"];  // Ollama names the tool a result answers
    if (one.contains("tool_calls") && one["tool_calls"].is_array())
      for (auto& c : one["tool_calls"])
        if (c.is_object() && !c.contains("type")) c["type"] = "function";
    if (!one.contains("content")) one["content"] = "";  // Ollama allows a message without content
    messages.push_back(std::move(one));
  }
  openai["messages"] = std::move(messages);
  r.request = parse_translated(openai, b, parse_chat_completion_request);
  apply_think(r);
  return r;
}

OllamaRequest parse_ollama_generate_request(std::string_view body) {
  const json b = parse_body(body);
  OllamaRequest r;
  json openai = json::object();
  read_shared(b, r, openai);
  refuse_nonempty(b, "images", "images", "images (image input)");
  refuse_nonempty(b, "suffix", "suffix", "suffix (insertion)");
  refuse_nonempty(b, "template", "template", "a request's own template");
  const std::string prompt = get_string(b, "prompt");
  const std::string system = get_string(b, "system");
  const json* raw = get(b, "raw");
  if (raw && !raw->is_boolean()) reject("raw", std::string("raw must be a boolean, not ") + raw->type_name());
  if (prompt.empty()) {
    r.load_only = true;
    r.request.stream = openai["stream"].get<bool>();
    return r;
  }
  if (raw && raw->get<bool>()) {
    // The prompt as it is, no template.
    openai["prompt"] = prompt;
    r.request = parse_translated(openai, b, parse_text_completion_request);
    return r;
  }
  json messages = json::array();
  if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
  messages.push_back({{"role", "user"}, {"content", prompt}});
  openai["messages"] = std::move(messages);
  r.request = parse_translated(openai, b, parse_chat_completion_request);
  apply_think(r);
  return r;
}

std::string parse_ollama_show_request(std::string_view body) {
  const json b = parse_body(body);
  std::string name = get_string(b, "model");
  if (name.empty()) name = get_string(b, "name");
  if (name.empty()) reject("model", "model is required");
  return name;
}

}  // namespace tandem::server
