// Fuzzes chat-format detection and rendering with arbitrary template text and message content.
// Input layout: byte 0 picks options; the rest is split at '\x01' bytes: the first piece is the
// tokenizer.chat_template text, the others become messages with rotating roles.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/core/error.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> pieces;
  for (size_t at = 0;;) {
    const size_t next = rest.find('\x01', at);
    pieces.push_back(rest.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos) break;
    at = next + 1;
  }

  // Detection must be a pure function of the text.
  const std::string template_text(pieces[0]);
  const auto detected = detect_chat_format(template_text);
  if (detected != detect_chat_format(template_text)) std::abort();

  const bool has_template = flags & 1;
  const bool ds3_vocab = flags & 2;
  const bool add_generation_prompt = flags & 4;
  std::string override_name;
  if (flags & 8) override_name = std::string(pieces.size() > 1 ? pieces[1] : std::string_view("chatml"));
  ChatFormatChoice choice{ChatFormat::Chatml, ""};
  try {
    choice = choose_chat_format(has_template ? std::optional<std::string>(template_text) : std::nullopt,
                                override_name, ds3_vocab);
  } catch (const Error&) {
    return 0;  // an unknown override name: rejected with an error, as it should be
  }
  if (override_name.empty()) {
    const bool recognised = has_template && detected;
    if (recognised && choice.format != *detected) std::abort();
    if (choice.warning.empty() != recognised) std::abort();  // a warning exactly for a fallback
  } else if (!choice.warning.empty()) {
    std::abort();
  }

  static const char* const roles[] = {"system", "user", "assistant", "user", "tool"};
  std::vector<ChatMessage> messages;
  for (size_t i = 1; i < pieces.size(); ++i)
    messages.push_back({roles[(i + (flags >> 4)) % 5], std::string(pieces[i])});
  const ChatTemplate t(choice.format, "<bos>", "<eos>");
  try {
    const std::string out = t.render(messages, add_generation_prompt);
    // Every user message appears in the prompt verbatim (llama3 trims, so check the trimmed core).
    for (const auto& m : messages) {
      if (m.role != "user") continue;
      std::string_view c = m.content;
      while (!c.empty() && std::string_view(" \t\n\r\f\v").find(c.front()) != std::string_view::npos) c.remove_prefix(1);
      while (!c.empty() && std::string_view(" \t\n\r\f\v").find(c.back()) != std::string_view::npos) c.remove_suffix(1);
      if (out.find(c) == std::string::npos) std::abort();
    }
    for (const auto& s : t.end_of_turn_texts())
      if (s.empty()) std::abort();
  } catch (const Error&) {
    // Only an unsupported role is an error.
    bool has_tool = false;
    for (const auto& m : messages) has_tool |= m.role == "tool";
    if (!has_tool) std::abort();
  }
  return 0;
}
