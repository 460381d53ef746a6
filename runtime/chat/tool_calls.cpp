#include "runtime/chat/tool_calls.h"

#include <algorithm>
#include <array>

namespace tandem {
namespace {

using nlohmann::json;

constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";
constexpr std::string_view kQwenOpen = "<tool_call>";
constexpr std::string_view kQwenClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

constexpr std::string_view kSpace = " \t\r\n";

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool all_space(std::string_view s) { return s.find_first_not_of(kSpace) == std::string_view::npos; }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Compact JSON when the text parses, else the text as it came.
std::string normalize_arguments(std::string_view text) {
  try {
    return dump(json::parse(text));
  } catch (const json::exception&) {
    return std::string(text);
  }
}

std::string quoted(const std::string& s) { return dump(json(s)); }

// How a call opens and closes in formats with markers (DeepSeek, Qwen).
std::string_view open_marker(ToolCallFormat f) { return f == ToolCallFormat::Qwen ? kQwenOpen : kCallBegin; }
std::string_view close_marker(ToolCallFormat f) { return f == ToolCallFormat::Qwen ? kQwenClose : kCallEnd; }

// Length of the longest suffix of s that is a proper prefix of m.
size_t partial_suffix(std::string_view s, std::string_view m) {
  for (size_t n = std::min(s.size(), m.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == m.substr(0, n)) return n;
  return 0;
}

}  // namespace

std::string_view tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::None: return "none";
    case ToolCallFormat::DeepseekV3: return "deepseek-v3";
    case ToolCallFormat::DeepseekV31: return "deepseek-v3.1";
    case ToolCallFormat::Qwen: return "qwen";
    case ToolCallFormat::Llama3: return "llama3";
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(ChatFormat format, std::string_view src) {
  if (src.find(kSep) != std::string_view::npos)
    return src.find("```json") != std::string_view::npos ? ToolCallFormat::DeepseekV3 : ToolCallFormat::DeepseekV31;
  if (src.find(kQwenOpen) != std::string_view::npos) return ToolCallFormat::Qwen;
  switch (format) {
    case ChatFormat::Deepseek3:
    case ChatFormat::DeepseekR1: return ToolCallFormat::DeepseekV3;
    case ChatFormat::Llama3: return ToolCallFormat::Llama3;
    case ChatFormat::Chatml: return ToolCallFormat::Qwen;
    default: return ToolCallFormat::None;
  }
}

bool tool_arguments_as_object(ToolCallFormat f) { return f == ToolCallFormat::Qwen || f == ToolCallFormat::Llama3; }

namespace {

std::string call_example(ToolCallFormat f, const std::string& name, const std::string& args) {
  switch (f) {
    case ToolCallFormat::DeepseekV3:
      return std::string(kCallsBegin) + std::string(kCallBegin) + "function" + std::string(kSep) + name + "\n```json\n" +
             args + "\n```" + std::string(kCallEnd) + std::string(kCallsEnd);
    case ToolCallFormat::DeepseekV31:
      return std::string(kCallsBegin) + std::string(kCallBegin) + name + std::string(kSep) + args +
             std::string(kCallEnd) + std::string(kCallsEnd);
    case ToolCallFormat::Qwen:
      return std::string(kQwenOpen) + "\n{\"name\": " + quoted(name) + ", \"arguments\": " + args + "}\n" +
             std::string(kQwenClose);
    case ToolCallFormat::Llama3: return "{\"name\": " + quoted(name) + ", \"parameters\": " + args + "}";
    case ToolCallFormat::None: break;
  }
  return "";
}

}  // namespace

std::string tools_system_text(ToolCallFormat f, std::span<const ToolFunction> tools) {
  std::string t = "## Tools\nYou can call these functions:\n";
  for (const auto& tool : tools) {
    t += "\n### " + tool.name + "\n";
    if (!tool.description.empty()) t += "Description: " + tool.description + "\n";
    t += "Parameters: " + (tool.parameters.is_null() ? std::string("{}") : dump(tool.parameters)) + "\n";
  }
  t += "\nTo call a function, reply with exactly:\n" + call_example(f, "FUNCTION_NAME", "{ARGUMENTS AS JSON}") + "\n";
  return t;
}

std::shared_ptr<const JsonGrammar> tool_call_grammar(ToolCallFormat f, std::span<const ToolFunction> tools,
                                                     const std::string& only_name) {
  auto g = std::make_shared<JsonGrammar>();
  std::vector<uint32_t> alts;
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolFunction& tool = tools[i];
    if (!only_name.empty() && tool.name != only_name) continue;
    const json& p = tool.parameters;
    const uint32_t args = p.is_null() || (p.is_object() && p.empty())
                              ? g->any_object()
                              : g->schema(p, "tools[" + std::to_string(i) + "].function.parameters");
    switch (f) {
      case ToolCallFormat::DeepseekV3:
        alts.push_back(g->seq({g->literal(tool.name + "\n```json\n"), args,
                               g->literal("\n```" + std::string(kCallEnd) + std::string(kCallsEnd))}));
        break;
      case ToolCallFormat::DeepseekV31:
        alts.push_back(g->seq({g->literal(tool.name + std::string(kSep)), args,
                               g->literal(std::string(kCallEnd) + std::string(kCallsEnd))}));
        break;
      case ToolCallFormat::Qwen:
        alts.push_back(g->seq({g->literal(quoted(tool.name) + ", \"arguments\": "), args,
                               g->literal("}\n" + std::string(kQwenClose))}));
        break;
      case ToolCallFormat::Llama3:
        alts.push_back(g->seq({g->literal(quoted(tool.name) + ", \"parameters\": "), args, g->literal("}")}));
        break;
      case ToolCallFormat::None: throw SchemaError("tools", "this model's chat template has no tool-call format");
    }
  }
  if (alts.empty()) throw SchemaError("tool_choice", "names no function of tools");
  std::string head;
  switch (f) {
    case ToolCallFormat::DeepseekV3:
      head = std::string(kCallsBegin) + std::string(kCallBegin) + "function" + std::string(kSep);
      break;
    case ToolCallFormat::DeepseekV31: head = std::string(kCallsBegin) + std::string(kCallBegin); break;
    case ToolCallFormat::Qwen: head = std::string(kQwenOpen) + "\n{\"name\": "; break;
    case ToolCallFormat::Llama3: head = "{\"name\": "; break;
    case ToolCallFormat::None: break;
  }
  g->root = g->seq({g->literal(head), g->choice(std::move(alts))});
  g->finish();
  return g;
}

ToolCallParser::ToolCallParser(ToolCallFormat format) : format_(format) {}

void ToolCallParser::emit_content(Piece& out, std::string_view text) {
  if (text.empty()) return;
  // Whitespace waits: dropped when it only separates calls (or precedes them).
  if (all_space(text)) {
    pending_ws_ += text;
    return;
  }
  out.content += pending_ws_;
  pending_ws_.clear();
  out.content += text;
}

std::optional<ToolCall> ToolCallParser::parse_body(std::string_view body) const {
  ToolCall c;
  switch (format_) {
    case ToolCallFormat::DeepseekV3: {
      const size_t sep = body.find(kSep);
      if (sep == std::string_view::npos) return std::nullopt;
      std::string_view rest = body.substr(sep + kSep.size());
      const size_t nl = rest.find('\n');
      c.name = std::string(trim(rest.substr(0, nl)));
      std::string_view args = nl == std::string_view::npos ? std::string_view() : trim(rest.substr(nl + 1));
      if (args.starts_with("```json")) args.remove_prefix(7);
      else if (args.starts_with("```")) args.remove_prefix(3);
      if (args.ends_with("```")) args.remove_suffix(3);
      c.arguments = normalize_arguments(trim(args));
      break;
    }
    case ToolCallFormat::DeepseekV31: {
      const size_t sep = body.find(kSep);
      if (sep == std::string_view::npos) return std::nullopt;
      c.name = std::string(trim(body.substr(0, sep)));
      c.arguments = normalize_arguments(trim(body.substr(sep + kSep.size())));
      break;
    }
    case ToolCallFormat::Qwen:
    case ToolCallFormat::Llama3: {
      std::string_view t = trim(body);
      if (t.starts_with(kPythonTag)) t = trim(t.substr(kPythonTag.size()));
      json j;
      try {
        j = json::parse(t);
      } catch (const json::exception&) {
        return std::nullopt;
      }
      if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
      c.name = j["name"].get<std::string>();
      const char* key = j.contains("arguments") ? "arguments" : j.contains("parameters") ? "parameters" : nullptr;
      if (!key) {
        c.arguments = "{}";
      } else if (j[key].is_string()) {
        c.arguments = normalize_arguments(j[key].get<std::string>());
      } else {
        c.arguments = dump(j[key]);
      }
      break;
    }
    case ToolCallFormat::None: return std::nullopt;
  }
  if (c.name.empty()) return std::nullopt;
  return c;
}

ToolCallParser::Piece ToolCallParser::push(std::string_view text) {
  Piece out;
  held_ += text;
  if (format_ == ToolCallFormat::None) {
    out.content = std::move(held_);
    held_.clear();
    return out;
  }
  if (format_ == ToolCallFormat::Llama3) {
    if (!started_) {
      const size_t b = held_.find_first_not_of(kSpace);
      if (b == std::string::npos) return out;
      const std::string_view rest = std::string_view(held_).substr(b);
      if (rest.size() < kPythonTag.size() && kPythonTag.starts_with(rest)) return out;  // maybe the tag
      started_ = true;
      buffering_ = rest.starts_with("{") || rest.starts_with(kPythonTag);
    }
    if (!buffering_) {
      out.content = std::move(held_);
      held_.clear();
    }
    return out;
  }
  const std::string_view open = open_marker(format_), close = close_marker(format_);
  const bool deepseek = format_ != ToolCallFormat::Qwen;
  for (;;) {
    if (in_call_) {
      const size_t at = held_.find(close);
      if (at == std::string::npos) return out;
      const std::string body = held_.substr(0, at);
      held_.erase(0, at + close.size());
      in_call_ = false;
      if (auto call = parse_body(body)) {
        out.calls.push_back(std::move(*call));
        ++calls_;
        pending_ws_.clear();
      } else {
        emit_content(out, std::string(open) + body + std::string(close));
      }
      continue;
    }
    // The earliest marker: a call's opening, or DeepSeek's wrapper around the calls (dropped).
    size_t at = std::string::npos, len = 0;
    bool opens = false;
    std::array<std::string_view, 3> markers = {open, deepseek ? kCallsBegin : std::string_view(),
                                               deepseek ? kCallsEnd : std::string_view()};
    for (size_t i = 0; i < markers.size(); ++i) {
      if (markers[i].empty()) continue;
      const size_t p = held_.find(markers[i]);
      if (p != std::string::npos && p < at) {
        at = p;
        len = markers[i].size();
        opens = i == 0;
      }
    }
    if (at != std::string::npos) {
      emit_content(out, std::string_view(held_).substr(0, at));
      held_.erase(0, at + len);
      in_call_ = opens;
      continue;
    }
    size_t keep = 0;
    for (auto m : markers)
      if (!m.empty()) keep = std::max(keep, partial_suffix(held_, m));
    emit_content(out, std::string_view(held_).substr(0, held_.size() - keep));
    held_.erase(0, held_.size() - keep);
    return out;
  }
}

ToolCallParser::Piece ToolCallParser::finish() {
  Piece out;
  if (format_ == ToolCallFormat::Llama3 && buffering_) {
    if (auto call = parse_body(held_)) {
      out.calls.push_back(std::move(*call));
      ++calls_;
    } else {
      out.content = held_;
    }
    held_.clear();
    return out;
  }
  if (in_call_) {
    emit_content(out, std::string(open_marker(format_)) + held_);  // a call that never closed
  } else {
    emit_content(out, held_);
  }
  held_.clear();
  in_call_ = false;
  if (calls_ == 0) out.content += pending_ws_;  // a reply of whitespace only (or ending in it)
  pending_ws_.clear();
  return out;
}

}  // namespace tandem
