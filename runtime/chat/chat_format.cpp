#include "runtime/chat/chat_format.h"

#include <array>
#include <utility>

#include "runtime/core/error.h"

namespace tandem {
namespace {

constexpr std::array<std::pair<ChatFormat, std::string_view>, 6> kNames = {{
    {ChatFormat::Deepseek3, "deepseek3"},
    {ChatFormat::DeepseekR1, "deepseek-r1"},
    {ChatFormat::Deepseek2, "deepseek2"},
    {ChatFormat::DeepseekCoder, "deepseek-coder"},
    {ChatFormat::Chatml, "chatml"},
    {ChatFormat::Llama3, "llama3"},
}};

}  // namespace

std::string_view chat_format_name(ChatFormat f) {
  for (const auto& [format, name] : kNames)
    if (format == f) return name;
  return "unknown";
}

std::optional<ChatFormat> chat_format_from_name(std::string_view name) {
  for (const auto& [format, n] : kNames)
    if (n == name) return format;
  return std::nullopt;
}

std::vector<std::string_view> chat_format_names() {
  std::vector<std::string_view> r;
  for (const auto& entry : kNames) r.push_back(entry.second);
  return r;
}

std::optional<ChatFormat> detect_chat_format(std::string_view t) {
  if (auto named = chat_format_from_name(t)) return named;
  auto has = [t](std::string_view marker) { return t.find(marker) != std::string_view::npos; };
  if (has("<|im_start|>")) return ChatFormat::Chatml;
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::Llama3;
  if (has("### Instruction:") && has("<|EOT|>")) return ChatFormat::DeepseekCoder;
  if (has("<｜User｜>") && has("<｜Assistant｜>"))
    return has("<think>") || has("</think>") ? ChatFormat::DeepseekR1 : ChatFormat::Deepseek3;
  if ((has("'User: '") || has("\"User: \"")) && (has("'Assistant: '") || has("\"Assistant: \"")))
    return ChatFormat::Deepseek2;
  return std::nullopt;
}

ChatFormatChoice choose_chat_format(const std::optional<std::string>& template_text,
                                    std::string_view override_name, bool vocab_has_deepseek3_tokens) {
  if (!override_name.empty()) {
    if (auto f = chat_format_from_name(override_name)) return {*f, ""};
    std::string known;
    for (auto n : chat_format_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    fail("--chat-format '", override_name, "': unknown format (known: ", known, ")");
  }
  if (template_text)
    if (auto f = detect_chat_format(*template_text)) return {*f, ""};
  const ChatFormat fallback = vocab_has_deepseek3_tokens ? ChatFormat::Deepseek3 : ChatFormat::Deepseek2;
  std::string why = template_text ? "tokenizer.chat_template is not a format tandem recognises"
                                  : "the model has no tokenizer.chat_template";
  return {fallback, why + "; using '" + std::string(chat_format_name(fallback)) +
                        "' (choose another with --chat-format)"};
}

}  // namespace tandem
