#include "runtime/chat/chat_template.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "runtime/chat/jinja/interpreter.h"
#include "runtime/chat/jinja/parser.h"
#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/tokenizer/tokenizer.h"

namespace tandem {
namespace {

constexpr std::string_view kDsUser = "<｜User｜>";
constexpr std::string_view kDsAssistant = "<｜Assistant｜>";
constexpr std::string_view kDsEnd = "<｜end▁of▁sentence｜>";

// deepseek-coder-instruct's template adds this when the conversation has no system message.
constexpr std::string_view kCoderDefaultSystem =
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
    "Company, and you only answer questions related to computer science. For politically sensitive "
    "questions, security and privacy issues, and other non-computer science questions, you will refuse "
    "to answer\n";

enum class Role { System, User, Assistant };

Role role_of(const ChatMessage& m, size_t index) {
  if (m.role == "system") return Role::System;
  if (m.role == "user") return Role::User;
  if (m.role == "assistant") return Role::Assistant;
  if (m.role == "tool") fail("chat message ", index, ": role 'tool' needs a format with tool results (DeepSeek V3/R1) or the model's Jinja template");
  fail("chat message ", index, ": role '", m.role, "' is not one of system, user, assistant");
}

// Jinja's |trim on ASCII whitespace.
std::string_view trim(std::string_view s) {
  constexpr std::string_view ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// R1 keeps only what follows the last </think> of earlier replies.
std::string_view drop_reasoning(std::string_view s) {
  const size_t at = s.rfind("</think>");
  return at == std::string_view::npos ? s : s.substr(at + 8);
}

// Templates are a few KiB; a bigger file is almost certainly the wrong one.
constexpr std::streamoff kMaxTemplateFileBytes = 4 << 20;

std::string read_template_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--chat-template-file ", path, ": cannot open it");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size > kMaxTemplateFileBytes) fail("--chat-template-file ", path, ": ", size, " bytes is too big for a chat template");
  in.seekg(0);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) fail("--chat-template-file ", path, ": read error");
  return s.str();
}

// A conversation every chat template should render; one that fails on it is outside the subset.
// No system message: some templates refuse one (raise_exception), which is the template's right.
const nlohmann::ordered_json& probe_messages() {
  static const nlohmann::ordered_json m = nlohmann::ordered_json::parse(
      R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
          {"role": "user", "content": "2+2?"}])");
  return m;
}

// Renders the probe conversation; an Error names the template's source.
void probe(const ChatTemplate& t, const std::string& source_name) {
  try {
    t.render_json(probe_messages(), true);
  } catch (const Error& e) {
    fail(source_name, ": ", e.what());
  }
}

}  // namespace

ChatTemplate::ChatTemplate(ChatFormat format, std::string bos_text, std::string eos_text)
    : format_(format), bos_(std::move(bos_text)), eos_(std::move(eos_text)),
      tool_format_(detect_tool_call_format(format, "")) {}

ChatTemplate ChatTemplate::from_jinja(std::string_view source, std::string source_name, ChatFormat format,
                                      std::string bos_text, std::string eos_text) {
  ChatTemplate t(format, std::move(bos_text), std::move(eos_text));
  try {
    t.program_ = std::make_shared<const jinja::Program>(jinja::parse(source));
  } catch (const Error& e) {
    fail(source_name, ": ", e.what());
  }
  t.source_name_ = std::move(source_name);
  t.tool_format_ = detect_tool_call_format(format, source);
  // Templates that list the tools loop over them ("for tool in tools") or test them ("if tools").
  t.renders_tools_ = source.find("in tools") != std::string_view::npos || source.find("if tools") != std::string_view::npos;
  return t;
}

ChatTemplate ChatTemplate::for_model(const GgufFile& file, const Tokenizer& tokenizer, std::string_view override_name,
                                     std::string* warning) {
  ChatTemplateOptions o;
  o.format_name = std::string(override_name);
  return for_model(file, tokenizer, o, warning);
}

ChatTemplate ChatTemplate::for_model(const GgufFile& file, const Tokenizer& tokenizer, const ChatTemplateOptions& options,
                                     std::string* warning) {
  if (warning) warning->clear();
  if (!options.format_name.empty() && !options.template_file.empty())
    fail("--chat-format and --chat-template-file exclude each other");
  const BpeVocab& v = tokenizer.vocab();
  const bool has_ds3 = v.find(kDsUser) != kNoToken && v.find(kDsAssistant) != kNoToken;
  const std::string bos = v.contains(v.bos()) ? v.text(v.bos()) : "";
  const std::string eos = v.contains(v.eos()) ? v.text(v.eos()) : "";
  if (!options.format_name.empty())
    return ChatTemplate(choose_chat_format(std::nullopt, options.format_name, has_ds3).format, bos, eos);

  const bool from_file = !options.template_file.empty();
  const std::optional<std::string> text =
      from_file ? std::optional<std::string>(read_template_file(options.template_file))
                : file.get_string_opt("tokenizer.chat_template");
  return from_model_text(text, from_file ? options.template_file : "tokenizer.chat_template", from_file, has_ds3, bos,
                         eos, warning);
}

ChatTemplate ChatTemplate::from_model_text(const std::optional<std::string>& text, const std::string& source_name,
                                           bool strict, bool vocab_has_deepseek3_tokens, std::string bos_text,
                                           std::string eos_text, std::string* warning) {
  if (warning) warning->clear();
  // The detected format gives the end-of-turn tokens, and the fallback renderer.
  const ChatFormatChoice choice = choose_chat_format(text, "", vocab_has_deepseek3_tokens);
  if (!text) {
    if (warning) *warning = choice.warning;
    return ChatTemplate(choice.format, std::move(bos_text), std::move(eos_text));
  }
  try {
    ChatTemplate t = from_jinja(*text, source_name, choice.format, bos_text, eos_text);
    probe(t, source_name);
    return t;
  } catch (const Error& e) {
    if (strict) throw;  // the user asked for this template: no silent substitute
    if (warning)
      *warning = std::string(e.what()) + " (outside tandem's Jinja subset); using the hand-written '" +
                 std::string(chat_format_name(choice.format)) + "' format" +
                 (choice.warning.empty() ? "" : " as a guess (choose another with --chat-format)");
    return ChatTemplate(choice.format, std::move(bos_text), std::move(eos_text));
  }
}

void ChatTemplate::check_template_file(const std::string& path) {
  probe(from_jinja(read_template_file(path), path, ChatFormat::Chatml, "", ""), path);
}

std::string ChatTemplate::description() const {
  if (program_) return "Jinja template from " + source_name_;
  return "hand-written " + std::string(name()) + " format";
}

nlohmann::ordered_json ChatTemplate::messages_json(std::span<const ChatMessage> messages) const {
  using oj = nlohmann::ordered_json;
  oj a = oj::array();
  const bool as_object = tool_arguments_as_object(tool_format_);
  for (const auto& m : messages) {
    oj one = {{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.empty()) {
      if (m.content.empty()) one["content"] = nullptr;
      oj calls = oj::array();
      for (const auto& c : m.tool_calls) {
        oj args = c.arguments;
        if (as_object) {
          try {
            args = oj::parse(c.arguments);
          } catch (const nlohmann::json::exception&) {
            // not JSON: passed on as the string it is
          }
        }
        calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
      }
      one["tool_calls"] = std::move(calls);
    }
    if (!m.tool_call_id.empty()) one["tool_call_id"] = m.tool_call_id;
    if (!m.name.empty()) one["name"] = m.name;
    a.push_back(std::move(one));
  }
  return a;
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  if (program_) return render_json(messages_json(messages), add_generation_prompt);
  return render_hand_written(messages, add_generation_prompt);
}

std::string ChatTemplate::render_json(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                      const nlohmann::ordered_json& variables) const {
  if (!messages.is_array()) fail("chat messages must be an array");
  if (!variables.is_null() && !variables.is_object()) fail("chat template variables must be an object");
  if (program_) {
    nlohmann::ordered_json ctx = variables.is_object() ? variables : nlohmann::ordered_json::object();
    ctx["messages"] = messages;
    ctx["add_generation_prompt"] = add_generation_prompt;
    ctx["bos_token"] = bos_;
    ctx["eos_token"] = eos_;
    return jinja::render(*program_, jinja::Value::from_json(ctx));
  }
  if (variables.is_object() && variables.contains("tools") && !variables["tools"].empty() &&
      !variables["tools"].is_null())
    fail("tools need the model's Jinja chat template; the hand-written '", name(), "' format has no tool format");
  std::vector<ChatMessage> plain;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail("chat message ", i, ": needs a string 'role'");
    const auto content = m.value("content", nlohmann::ordered_json());
    if (!content.is_null() && !content.is_string())
      fail("chat message ", i, ": the hand-written '", name(), "' format takes only string content");
    ChatMessage one{m["role"].get<std::string>(), content.is_string() ? content.get<std::string>() : ""};
    if (m.contains("tool_calls") && m["tool_calls"].is_array())
      for (const auto& c : m["tool_calls"]) {
        const auto& fn = c.is_object() && c.contains("function") ? c["function"] : c;
        if (!fn.is_object() || !fn.contains("name") || !fn["name"].is_string())
          fail("chat message ", i, ": a tool call needs function.name");
        ToolCall call;
        call.name = fn["name"].get<std::string>();
        if (fn.contains("arguments"))
          call.arguments = fn["arguments"].is_string() ? fn["arguments"].get<std::string>() : fn["arguments"].dump();
        one.tool_calls.push_back(std::move(call));
      }
    plain.push_back(std::move(one));
  }
  return render_hand_written(plain, add_generation_prompt);
}

std::string ChatTemplate::render_hand_written(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  const bool deepseek = format_ == ChatFormat::Deepseek3 || format_ == ChatFormat::DeepseekR1;
  bool has_tools = false;
  for (const auto& m : messages) has_tools |= m.role == "tool" || !m.tool_calls.empty();
  if (has_tools && deepseek) return render_deepseek_tools(messages, add_generation_prompt);
  for (size_t i = 0; has_tools && i < messages.size(); ++i)
    if (messages[i].role == "tool" || !messages[i].tool_calls.empty())
      fail("chat message ", i, ": role '", messages[i].role, "' with tool ",
           messages[i].role == "tool" ? "results" : "calls", " needs the model's Jinja template; the hand-written '",
           name(), "' format has no tool format");
  for (size_t i = 0; i < messages.size(); ++i) role_of(messages[i], i);  // reject unknown roles first
  auto each = [&](auto&& emit) {
    for (size_t i = 0; i < messages.size(); ++i) emit(role_of(messages[i], i), std::string_view(messages[i].content));
  };
  switch (format_) {
    case ChatFormat::Deepseek3:
    case ChatFormat::DeepseekR1: {
      // The last system message goes first, right after BOS, with no separator.
      std::string_view system;
      each([&](Role r, std::string_view c) {
        if (r == Role::System) system = c;
      });
      out += bos_;
      out += system;
      const bool r1 = format_ == ChatFormat::DeepseekR1;
      each([&](Role r, std::string_view c) {
        if (r == Role::User) {
          out += kDsUser;
          out += c;
        } else if (r == Role::Assistant) {
          out += kDsAssistant;
          out += r1 ? drop_reasoning(c) : c;
          out += kDsEnd;
        }
      });
      if (add_generation_prompt) {
        out += kDsAssistant;
        if (r1) out += "<think>\n";
      }
      break;
    }
    case ChatFormat::Deepseek2:
      out += bos_;
      each([&](Role r, std::string_view c) {
        if (r == Role::System) {
          out += c;
          out += "\n\n";
        } else if (r == Role::User) {
          out += "User: ";
          out += c;
          out += "\n\n";
        } else {
          out += "Assistant: ";
          out += c;
          out += eos_;
        }
      });
      if (add_generation_prompt) out += "Assistant:";
      break;
    case ChatFormat::DeepseekCoder: {
      bool has_system = false;
      each([&](Role r, std::string_view) { has_system |= r == Role::System; });
      out += bos_;
      if (!has_system) out += kCoderDefaultSystem;
      each([&](Role r, std::string_view c) {
        if (r == Role::System) {
          out += c;
        } else if (r == Role::User) {
          out += "### Instruction:\n";
          out += c;
          out += "\n";
        } else {
          out += "### Response:\n";
          out += c;
          out += "\n<|EOT|>\n";
        }
      });
      if (add_generation_prompt) out += "### Response:\n";
      break;
    }
    case ChatFormat::Chatml:
      for (const auto& m : messages) {
        out += "<|im_start|>";
        out += m.role;
        out += "\n";
        out += m.content;
        out += "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::Llama3:
      out += bos_;
      for (const auto& m : messages) {
        out += "<|start_header_id|>";
        out += m.role;
        out += "<|end_header_id|>\n\n";
        out += trim(m.content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
  }
  return out;
}

// DeepSeek V3/R1 with tool calls and results, as their templates write them (calls joined by
// "\n", results by "\n" inside <｜tool▁outputs▁begin｜>...<｜tool▁outputs▁end｜>, a reply after
// results without <｜Assistant｜>), without the templates' quirks: a single call is closed too, and
// a run of results is always closed.
std::string ChatTemplate::render_deepseek_tools(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  const bool r1 = format_ == ChatFormat::DeepseekR1;
  std::string system;
  bool first_system = true;
  for (const auto& m : messages)
    if (m.role == "system") {
      if (!first_system) system += "\n\n";
      system += m.content;
      first_system = false;
    }
  std::string out = bos_ + system;
  bool in_outputs = false;
  auto close_outputs = [&] {
    if (in_outputs) out += "<｜tool▁outputs▁end｜>";
    in_outputs = false;
  };
  bool after_outputs = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "tool") {
      out += in_outputs ? "\n<｜tool▁output▁begin｜>" : "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>";
      out += m.content;
      out += "<｜tool▁output▁end｜>";
      in_outputs = true;
      continue;
    }
    after_outputs = in_outputs;
    close_outputs();
    const Role r = role_of(m, i);
    if (r == Role::User) {
      out += kDsUser;
      out += m.content;
    } else if (r == Role::Assistant) {
      if (!after_outputs) out += kDsAssistant;
      out += r1 ? drop_reasoning(m.content) : std::string_view(m.content);
      if (!m.tool_calls.empty()) {
        out += "<｜tool▁calls▁begin｜>";
        for (size_t k = 0; k < m.tool_calls.size(); ++k) {
          if (k) out += "\n";
          out += "<｜tool▁call▁begin｜>function<｜tool▁sep｜>" + m.tool_calls[k].name + "\n```json\n" +
                 m.tool_calls[k].arguments + "\n```<｜tool▁call▁end｜>";
        }
        out += "<｜tool▁calls▁end｜>";
      }
      out += kDsEnd;
    }
  }
  const bool ends_in_outputs = in_outputs;
  close_outputs();
  if (add_generation_prompt && !ends_in_outputs) {
    out += kDsAssistant;
    if (r1) out += "<think>\n";
  }
  return out;
}

std::vector<int32_t> ChatTemplate::end_of_generation_tokens(const Tokenizer& tokenizer) const {
  std::vector<int32_t> ids;
  auto add = [&](TokenId id) {
    if (id != kNoToken && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  for (const auto& text : end_of_turn_texts()) add(tokenizer.vocab().find(text));
  if (tokenizer.vocab().contains(tokenizer.vocab().eos())) add(tokenizer.vocab().eos());
  return ids;
}

std::vector<std::string> ChatTemplate::end_of_turn_texts() const {
  std::vector<std::string> r;
  switch (format_) {
    case ChatFormat::Deepseek3:
    case ChatFormat::DeepseekR1:
      r = {std::string(kDsEnd)};
      break;
    case ChatFormat::Deepseek2:
      break;  // the EOS below
    case ChatFormat::DeepseekCoder:
      r = {"<|EOT|>"};
      break;
    case ChatFormat::Chatml:
      r = {"<|im_end|>", "<|endoftext|>"};
      break;
    case ChatFormat::Llama3:
      r = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
      break;
  }
  if (!eos_.empty() && std::find(r.begin(), r.end(), eos_) == r.end()) r.push_back(eos_);
  return r;
}

}  // namespace tandem
