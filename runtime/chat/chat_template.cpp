#include "runtime/chat/chat_template.h"

#include <algorithm>

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

}  // namespace

ChatTemplate::ChatTemplate(ChatFormat format, std::string bos_text, std::string eos_text)
    : format_(format), bos_(std::move(bos_text)), eos_(std::move(eos_text)) {}

ChatTemplate ChatTemplate::for_model(const GgufFile& file, const Tokenizer& tokenizer, std::string_view override_name,
                                     std::string* warning) {
  const BpeVocab& v = tokenizer.vocab();
  const bool has_ds3 = v.find(kDsUser) != kNoToken && v.find(kDsAssistant) != kNoToken;
  const ChatFormatChoice choice =
      choose_chat_format(file.get_string_opt("tokenizer.chat_template"), override_name, has_ds3);
  if (warning) *warning = choice.warning;
  const std::string bos = v.contains(v.bos()) ? v.text(v.bos()) : "";
  const std::string eos = v.contains(v.eos()) ? v.text(v.eos()) : "";
  return ChatTemplate(choice.format, bos, eos);
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
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
