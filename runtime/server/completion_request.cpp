#include "runtime/server/completion_request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "runtime/server/request_error.h"

namespace tandem::server {
namespace {

using nlohmann::json;

// Deeper nesting than any valid body needs; refusing it early bounds parse work and memory.
constexpr int kMaxDepth = 32;

[[noreturn]] void reject(const std::string& param, const std::string& message, const std::string& code = "") {
  throw RequestError::invalid(param, message, code);
}

json parse_body(std::string_view body) {
  bool too_deep = false;
  const json::parser_callback_t depth_guard = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;  // discard everything once too deep
  };
  json j;
  try {
    j = json::parse(body.begin(), body.end(), depth_guard);
  } catch (const json::exception& e) {
    reject("", std::string("the request body is not valid JSON: ") + e.what(), "invalid_json");
  }
  if (too_deep) reject("", "the request body nests deeper than " + std::to_string(kMaxDepth) + " levels");
  if (!j.is_object()) reject("", std::string("the request body must be a JSON object, not ") + j.type_name());
  return j;
}

const char* type_of(const json& v) { return v.type_name(); }

// Field access: null counts as absent, as OpenAI clients send explicit nulls for defaults.
const json* get(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> get_bool(const json& obj, const char* name, const std::string& path) {
  const json* v = get(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) reject(path, path + " must be a boolean, not " + type_of(*v));
  return v->get<bool>();
}

std::optional<int64_t> get_int(const json& obj, const char* name, const std::string& path) {
  const json* v = get(obj, name);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) reject(path, path + " is too large");
    return int64_t(u);
  }
  if (!v->is_number_integer()) reject(path, path + " must be an integer, not " + type_of(*v));
  return v->get<int64_t>();
}

// A number within [lo, hi] (open ends where lo_open / hi_open).
std::optional<float> get_number(const json& obj, const char* name, const std::string& path, double lo, double hi,
                                bool lo_open = false, bool hi_open = false) {
  const json* v = get(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) reject(path, path + " must be a number, not " + type_of(*v));
  const double d = v->get<double>();
  const bool below = lo_open ? !(d > lo) : !(d >= lo);
  const bool above = hi_open ? !(d < hi) : !(d <= hi);
  if (!std::isfinite(d) || below || above) {
    auto num = [](double x) {
      std::string s = std::to_string(x);
      while (s.size() > 1 && s.back() == '0') s.pop_back();
      if (s.back() == '.') s.pop_back();
      return s;
    };
    reject(path, path + " must be in " + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]") +
                     ", got " + v->dump());
  }
  return float(d);
}

std::optional<std::string> get_string(const json& obj, const char* name, const std::string& path) {
  const json* v = get(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) reject(path, path + " must be a string, not " + type_of(*v));
  return v->get<std::string>();
}

std::string unsupported(const std::string& what) { return what + " is not supported by this server"; }

bool valid_function_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(uint8_t(c)) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

void read_sampling(const json& b, SamplingFields& s) {
  s.temperature = get_number(b, "temperature", "temperature", 0.0, 2.0);
  s.top_p = get_number(b, "top_p", "top_p", 0.0, 1.0, /*lo_open=*/true);
  if (const auto k = get_int(b, "top_k", "top_k")) {
    if (*k < 0 || *k > std::numeric_limits<int>::max()) reject("top_k", "top_k must be >= 0 (0 means off)");
    s.top_k = int(*k);
  }
  s.min_p = get_number(b, "min_p", "min_p", 0.0, 1.0, false, /*hi_open=*/true);
  s.presence_penalty = get_number(b, "presence_penalty", "presence_penalty", -2.0, 2.0);
  s.frequency_penalty = get_number(b, "frequency_penalty", "frequency_penalty", -2.0, 2.0);
  s.repeat_penalty = get_number(b, "repeat_penalty", "repeat_penalty", 0.0, 10.0, /*lo_open=*/true);
  const json* seed = get(b, "seed");
  if (seed) {
    if (seed->is_number_unsigned()) {
      s.seed = seed->get<uint64_t>();
    } else if (seed->is_number_integer()) {
      if (seed->get<int64_t>() != -1) reject("seed", "seed must be a non-negative integer (or -1 for a random one)");
    } else {
      reject("seed", std::string("seed must be an integer, not ") + type_of(*seed));
    }
  }
}

void read_common(const json& b, CompletionRequest& r) {
  if (auto m = get_string(b, "model", "model")) r.model = std::move(*m);

  // max_completion_tokens is the newer name; either may be sent, the newer one wins.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (const auto n = get_int(b, name, name)) {
      if (*n < 1) reject(name, std::string(name) + " must be at least 1, got " + std::to_string(*n));
      r.max_tokens = *n;
    }
  }

  if (const json* stop = get(b, "stop")) {
    auto add = [&](const json& s, const std::string& path) {
      if (!s.is_string()) reject(path, path + " must be a string, not " + type_of(s));
      if (s.get_ref<const std::string&>().empty()) reject(path, path + " must not be empty");
      r.stop.push_back(s.get<std::string>());
    };
    if (stop->is_string()) {
      add(*stop, "stop");
    } else if (stop->is_array()) {
      if (stop->size() > kMaxStopStrings)
        reject("stop", "stop takes at most " + std::to_string(kMaxStopStrings) + " strings, got " +
                           std::to_string(stop->size()));
      for (size_t i = 0; i < stop->size(); ++i) add((*stop)[i], "stop[" + std::to_string(i) + "]");
    } else {
      reject("stop", std::string("stop must be a string or an array of strings, not ") + type_of(*stop));
    }
  }

  read_sampling(b, r.sampling);

  r.stream = get_bool(b, "stream", "stream").value_or(false);
  if (const json* so = get(b, "stream_options")) {
    if (!so->is_object()) reject("stream_options", std::string("stream_options must be an object, not ") + type_of(*so));
    r.include_usage = get_bool(*so, "include_usage", "stream_options.include_usage").value_or(false);
  }

  if (const auto n = get_int(b, "n", "n"); n && *n != 1)
    reject("n", "n must be 1: this server returns one choice per request, got " + std::to_string(*n));

  if (const json* lb = get(b, "logit_bias")) {
    if (!lb->is_object()) reject("logit_bias", std::string("logit_bias must be an object, not ") + type_of(*lb));
    if (!lb->empty()) reject("logit_bias", unsupported("logit_bias"));
  }
  if (const json* rf = get(b, "response_format")) {
    if (!rf->is_object()) reject("response_format", std::string("response_format must be an object, not ") + type_of(*rf));
    const auto type = get_string(*rf, "type", "response_format.type");
    if (!type) reject("response_format.type", "response_format.type is required");
    if (*type == "json_object") {
      r.grammar = json_object_grammar();
    } else if (*type == "json_schema") {
      const json* js = get(*rf, "json_schema");
      if (!js || !js->is_object())
        reject("response_format.json_schema", "response_format.json_schema must be an object with a schema");
      get_string(*js, "name", "response_format.json_schema.name");  // checked, not used
      get_bool(*js, "strict", "response_format.json_schema.strict");  // the schema is always enforced
      const json* schema = get(*js, "schema");
      r.grammar = schema ? request_schema_grammar(*schema, "response_format.json_schema.schema") : json_object_grammar();
    } else if (*type != "text") {
      reject("response_format.type", "response_format.type must be text, json_object or json_schema; got '" + *type + "'");
    }
  }
  if (const auto top = get_int(b, "top_logprobs", "top_logprobs"); top && *top != 0)
    reject("top_logprobs", unsupported("top_logprobs"));
}

// content: a string, or an array of {"type": "text", "text": ...} parts (joined).
std::string read_content(const json& m, const std::string& path, bool may_be_null) {
  const json* c = get(m, "content");
  if (!c) {
    if (may_be_null) return "";
    reject(path, path + " is required");
  }
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array())
    reject(path, path + " must be a string or an array of content parts, not " + type_of(*c));
  std::string text;
  for (size_t i = 0; i < c->size(); ++i) {
    const json& part = (*c)[i];
    const std::string pp = path + "[" + std::to_string(i) + "]";
    if (!part.is_object()) reject(pp, pp + " must be an object, not " + type_of(part));
    const auto type = get_string(part, "type", pp + ".type");
    if (!type) reject(pp + ".type", pp + ".type is required");
    if (*type != "text")
      reject(pp + ".type", pp + ".type '" + *type + "' is not supported: this server takes text only");
    const auto t = get_string(part, "text", pp + ".text");
    if (!t) reject(pp + ".text", pp + ".text is required");
    text += *t;
  }
  return text;
}

void read_messages(const json& b, CompletionRequest& r) {
  const json* ms = get(b, "messages");
  if (!ms) reject("messages", "messages is required");
  if (!ms->is_array()) reject("messages", std::string("messages must be an array, not ") + type_of(*ms));
  if (ms->empty()) reject("messages", "messages must not be empty");
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string path = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) reject(path, path + " must be an object, not " + type_of(m));
    const auto role = get_string(m, "role", path + ".role");
    if (!role) reject(path + ".role", path + ".role is required");
    std::string r_role = *role;
    if (r_role == "developer") r_role = "system";  // the newer OpenAI name for system
    if (r_role == "function")
      reject(path + ".role", path + ".role 'function' (the deprecated function calling) is not supported: use tools");
    if (r_role != "system" && r_role != "user" && r_role != "assistant" && r_role != "tool")
      reject(path + ".role", path + ".role must be one of system, user, assistant, tool, developer; got '" + *role + "'");
    ChatMessage msg;
    msg.role = r_role;
    if (r_role == "tool") {
      if (auto id = get_string(m, "tool_call_id", path + ".tool_call_id")) msg.tool_call_id = *id;
      if (auto n = get_string(m, "name", path + ".name")) msg.name = *n;
    } else {
      get_string(m, "name", path + ".name");  // checked, not used
    }
    if (const json* tc = get(m, "tool_calls")) {
      if (!tc->is_array()) reject(path + ".tool_calls", path + ".tool_calls must be an array, not " + type_of(*tc));
      if (!tc->empty() && r_role != "assistant")
        reject(path + ".tool_calls", path + ".tool_calls: only assistant messages carry tool calls");
      if (tc->size() > kMaxTools) reject(path + ".tool_calls", path + ".tool_calls has too many calls");
      for (size_t k = 0; k < tc->size(); ++k) {
        const json& call = (*tc)[k];
        const std::string cp = path + ".tool_calls[" + std::to_string(k) + "]";
        if (!call.is_object()) reject(cp, cp + " must be an object, not " + type_of(call));
        const auto type = get_string(call, "type", cp + ".type");
        if (type && *type != "function") reject(cp + ".type", cp + ".type must be 'function'");
        const json* fn = get(call, "function");
        if (!fn || !fn->is_object()) reject(cp + ".function", cp + ".function must be an object");
        ToolCall c;
        if (auto id = get_string(call, "id", cp + ".id")) c.id = *id;
        const auto name = get_string(*fn, "name", cp + ".function.name");
        if (!name || name->empty()) reject(cp + ".function.name", cp + ".function.name is required");
        c.name = *name;
        // OpenAI sends arguments as a JSON string; Ollama clients as an object.
        if (const json* args = get(*fn, "arguments")) {
          if (args->is_string()) c.arguments = args->get<std::string>();
          else if (args->is_object()) c.arguments = args->dump();
          else reject(cp + ".function.arguments", cp + ".function.arguments must be a string of JSON");
        } else {
          c.arguments = "{}";
        }
        msg.tool_calls.push_back(std::move(c));
      }
    }
    if (get(m, "function_call")) reject(path + ".function_call", unsupported(path + ".function_call"));
    if (get(m, "audio")) reject(path + ".audio", unsupported(path + ".audio"));
    msg.content = read_content(m, path + ".content", r_role == "assistant");
    r.messages.push_back(std::move(msg));
  }
}

void read_tools(const json& b, CompletionRequest& r) {
  if (const json* t = get(b, "tools")) {
    if (!t->is_array()) reject("tools", std::string("tools must be an array, not ") + type_of(*t));
    if (t->size() > kMaxTools)
      reject("tools", "tools has " + std::to_string(t->size()) + " entries, more than " + std::to_string(kMaxTools));
    for (size_t i = 0; i < t->size(); ++i) {
      const json& tool = (*t)[i];
      const std::string path = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object()) reject(path, path + " must be an object, not " + type_of(tool));
      const auto type = get_string(tool, "type", path + ".type");
      if (type && *type != "function") reject(path + ".type", path + ".type must be 'function', got '" + *type + "'");
      const json* fn = get(tool, "function");
      if (!fn || !fn->is_object()) reject(path + ".function", path + ".function must be an object");
      ToolFunction f;
      const auto name = get_string(*fn, "name", path + ".function.name");
      if (!name) reject(path + ".function.name", path + ".function.name is required");
      if (!valid_function_name(*name))
        reject(path + ".function.name", path + ".function.name must be 1 to 64 of a-z A-Z 0-9 _ - . , got '" + *name + "'");
      for (const auto& other : r.tools)
        if (other.name == *name)
          reject(path + ".function.name", path + ".function.name: two tools are named '" + *name + "'");
      f.name = *name;
      if (auto d = get_string(*fn, "description", path + ".function.description")) f.description = *d;
      if (const json* p = get(*fn, "parameters")) {
        if (!p->is_object()) reject(path + ".function.parameters", path + ".function.parameters must be a JSON Schema object");
        if (p->dump().size() > kMaxSchemaBytes)
          reject(path + ".function.parameters", path + ".function.parameters is larger than 64 KiB");
        f.parameters = *p;
      }
      get_bool(*fn, "strict", path + ".function.strict");  // checked; forced calls always follow the schema
      r.tools.push_back(std::move(f));
    }
  }
  if (const json* tc = get(b, "tool_choice")) {
    if (tc->is_string()) {
      const std::string c = tc->get<std::string>();
      if (c == "none") r.tool_choice = ToolChoice::None;
      else if (c == "auto") r.tool_choice = ToolChoice::Auto;
      else if (c == "required") r.tool_choice = ToolChoice::Required;
      else reject("tool_choice", "tool_choice must be none, auto, required or a function; got '" + c + "'");
    } else if (tc->is_object()) {
      const auto type = get_string(*tc, "type", "tool_choice.type");
      if (type && *type != "function") reject("tool_choice.type", "tool_choice.type must be 'function'");
      const json* fn = get(*tc, "function");
      const auto name = fn && fn->is_object() ? get_string(*fn, "name", "tool_choice.function.name") : std::nullopt;
      if (!name) reject("tool_choice.function.name", "tool_choice.function.name is required");
      r.tool_choice = ToolChoice::Named;
      r.tool_choice_name = *name;
    } else {
      reject("tool_choice", std::string("tool_choice must be a string or an object, not ") + type_of(*tc));
    }
    if ((r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named) && r.tools.empty())
      reject("tool_choice", "tool_choice asks for a tool call but tools is empty");
    if (r.tool_choice == ToolChoice::Named &&
        std::none_of(r.tools.begin(), r.tools.end(), [&](const ToolFunction& f) { return f.name == r.tool_choice_name; }))
      reject("tool_choice.function.name",
             "tool_choice.function.name is '" + r.tool_choice_name + "', which is not in tools");
  }
  if (const auto ptc = get_bool(b, "parallel_tool_calls", "parallel_tool_calls")) (void)ptc;  // accepted
}

void read_chat_only(const json& b, CompletionRequest& r) {
  // llama.cpp's switch: "none" keeps <think> text inline; the others split it out.
  if (const auto rf = get_string(b, "reasoning_format", "reasoning_format")) {
    if (*rf == "none")
      r.split_reasoning = false;
    else if (*rf == "deepseek" || *rf == "deepseek-legacy" || *rf == "auto")
      r.split_reasoning = true;
    else
      reject("reasoning_format", "reasoning_format must be one of none, auto, deepseek; got '" + *rf + "'");
  }
  if (const json* kw = get(b, "chat_template_kwargs")) {
    if (!kw->is_object())
      reject("chat_template_kwargs", std::string("chat_template_kwargs must be an object, not ") + type_of(*kw));
    r.enable_thinking = get_bool(*kw, "enable_thinking", "chat_template_kwargs.enable_thinking");
  }
  if (const auto lp = get_bool(b, "logprobs", "logprobs"); lp && *lp) reject("logprobs", unsupported("logprobs"));
  if (const json* f = get(b, "functions")) {
    if (!f->is_array()) reject("functions", std::string("functions must be an array, not ") + type_of(*f));
    if (!f->empty()) reject("functions", unsupported("functions (the deprecated function calling): use tools"));
  }
  read_tools(b, r);
  if (get(b, "function_call")) reject("function_call", unsupported("function_call"));
  if (get(b, "audio")) reject("audio", unsupported("audio (output)"));
  if (const json* mod = get(b, "modalities")) {
    if (!mod->is_array()) reject("modalities", std::string("modalities must be an array, not ") + type_of(*mod));
    for (const auto& x : *mod)
      if (x != "text") reject("modalities", unsupported("modalities entry " + x.dump()) + " (only \"text\")");
  }
}

void read_prompt(const json& b, CompletionRequest& r) {
  const json* p = get(b, "prompt");
  if (!p) reject("prompt", "prompt is required");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    return;
  }
  if (!p->is_array())
    reject("prompt", std::string("prompt must be a string, an array of token ids or an array of one string, not ") +
                         type_of(*p));
  if (p->empty()) reject("prompt", "prompt must not be an empty array");
  const json* one = p;
  std::string path = "prompt";
  if ((*p)[0].is_string() || (*p)[0].is_array()) {
    // A batch of prompts: only a batch of one.
    if (p->size() != 1)
      reject("prompt", "prompt holds " + std::to_string(p->size()) + " prompts: this server takes one per request");
    one = &(*p)[0];
    path = "prompt[0]";
    if (one->is_string()) {
      r.prompt = one->get<std::string>();
      return;
    }
    if (one->empty()) reject(path, path + " must not be empty");
  }
  std::vector<int64_t> ids;
  for (size_t i = 0; i < one->size(); ++i) {
    const json& t = (*one)[i];
    const std::string tp = path + "[" + std::to_string(i) + "]";
    if (!t.is_number_integer() || (t.is_number_unsigned() && t.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) ||
        t.get<int64_t>() < 0)
      reject(tp, tp + " must be a token id (a non-negative integer), got " + t.dump());
    ids.push_back(t.get<int64_t>());
  }
  r.prompt = std::move(ids);
}

void read_text_only(const json& b) {
  if (const json* lp = get(b, "logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    reject("logprobs", unsupported("logprobs"));
  if (const auto echo = get_bool(b, "echo", "echo"); echo && *echo) reject("echo", unsupported("echo"));
  if (const auto best = get_int(b, "best_of", "best_of"); best && *best != 1)
    reject("best_of", "best_of must be 1: this server returns one choice per request");
  if (const auto suffix = get_string(b, "suffix", "suffix"); suffix && !suffix->empty())
    reject("suffix", unsupported("suffix (insertion)"));
}

}  // namespace

CompletionRequest parse_chat_completion_request(std::string_view body) {
  const json b = parse_body(body);
  CompletionRequest r;
  r.kind = RequestKind::Chat;
  read_messages(b, r);
  read_chat_only(b, r);
  read_common(b, r);
  if (r.grammar && (r.tool_choice == ToolChoice::Required || r.tool_choice == ToolChoice::Named))
    reject("response_format", "response_format and a forced tool call (tool_choice) both shape the reply: send one");
  return r;
}

std::shared_ptr<const JsonGrammar> request_schema_grammar(const json& schema, const std::string& param) {
  if (schema.dump().size() > kMaxSchemaBytes) reject(param, param + " is larger than 64 KiB");
  try {
    return compile_json_schema(schema);
  } catch (const SchemaError& e) {
    // The grammar names paths from "schema": name them from the request's field instead.
    std::string where = e.path(), message = e.what();
    if (where.starts_with("schema")) {
      message = param + message.substr(6);
      where = param + where.substr(6);
    } else {
      message = param + ": " + message;
    }
    reject(where.empty() ? param : where, message, "unsupported_schema");
  }
}

CompletionRequest parse_text_completion_request(std::string_view body) {
  const json b = parse_body(body);
  CompletionRequest r;
  r.kind = RequestKind::Text;
  read_prompt(b, r);
  read_text_only(b);
  read_common(b, r);
  return r;
}

}  // namespace tandem::server
