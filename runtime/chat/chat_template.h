// Renders a conversation into the prompt text of one chat format (see chat_format.h for why
// this is hand-written code rather than a Jinja engine). The text includes the BOS text where
// the model's own template writes bos_token, so it is meant to be encoded with
// add_special = false and parse_special = true.
//
// Each format follows its model's official tokenizer_config.json template for plain
// system/user/assistant turns; tool calls and tool results are not supported.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "runtime/chat/chat_format.h"

namespace tandem {

class GgufFile;
class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // bos_text / eos_text: the texts of the vocabulary's BOS and EOS tokens ("" when it has none).
  ChatTemplate(ChatFormat format, std::string bos_text, std::string eos_text);

  // The format from tokenizer.chat_template (or override_name when not empty; see
  // choose_chat_format), with BOS/EOS texts from the tokenizer. A fallback's warning is stored
  // in *warning (cleared otherwise).
  static ChatTemplate for_model(const GgufFile& file, const Tokenizer& tokenizer, std::string_view override_name,
                                std::string* warning);

  ChatFormat format() const { return format_; }
  std::string_view name() const { return chat_format_name(format_); }

  // The prompt for messages; add_generation_prompt appends the opening of an assistant turn.
  // A role other than system/user/assistant is an Error naming the message and the role.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

  // Texts of the tokens that end an assistant turn in this format (the EOS text included when
  // the format uses it). Map them to ids with the vocabulary; some may not exist there.
  std::vector<std::string> end_of_turn_texts() const;

 private:
  ChatFormat format_;
  std::string bos_;
  std::string eos_;
};

}  // namespace tandem
