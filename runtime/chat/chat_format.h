// The chat prompt formats tandem renders, and how one is chosen for a model.
//
// A GGUF carries its chat format as a Jinja program (tokenizer.chat_template), which
// ChatTemplate runs through tandem's Jinja subset interpreter. The formats here are the
// hand-written fallback: tandem recognises the few families its models use by distinctive
// markers in that text, which also gives each family's end-of-turn tokens. A template that
// matches none of them falls back to a default with a warning, and --chat-format NAME forces a
// hand-written format. Markers, checked in this order (first match wins):
//
//   the whole text is a format name below   -> that format
//   "<|im_start|>"                           -> chatml
//   "<|start_header_id|>" + "<|end_header_id|>" -> llama3
//   "### Instruction:" + "<|EOT|>"           -> deepseek-coder
//   "<｜User｜>" + "<｜Assistant｜>" + ("<think>" or "</think>") -> deepseek-r1
//   "<｜User｜>" + "<｜Assistant｜>"           -> deepseek3   (DeepSeek-V2.5, V3)
//   "'User: '" + "'Assistant: '" (or "\"User: \"" ...) -> deepseek2 (DeepSeek-V2, V2-Lite chat)
//
// The template text is untrusted input; detection only searches it for substrings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

enum class ChatFormat {
  Deepseek3,      // <｜begin▁of▁sentence｜>{system}<｜User｜>..<｜Assistant｜>..<｜end▁of▁sentence｜>
  DeepseekR1,     // as Deepseek3; history drops reasoning before </think>; replies open <think>\n
  Deepseek2,      // <bos>{system}\n\nUser: ..\n\nAssistant: ..<eos>
  DeepseekCoder,  // <bos>{system}### Instruction:\n..\n### Response:\n..\n<|EOT|>\n
  Chatml,         // <|im_start|>role\n..<|im_end|>\n
  Llama3,         // <bos><|start_header_id|>role<|end_header_id|>\n\n..<|eot_id|>
};

std::string_view chat_format_name(ChatFormat f);
// "deepseek3", "deepseek-r1", ... as above; nullopt for anything else.
std::optional<ChatFormat> chat_format_from_name(std::string_view name);
std::vector<std::string_view> chat_format_names();

// The format a tokenizer.chat_template text is, by the markers above; nullopt when none match.
std::optional<ChatFormat> detect_chat_format(std::string_view template_text);

struct ChatFormatChoice {
  ChatFormat format;
  std::string warning;  // empty unless the format is a fallback
};

// override_name (non-empty) wins and must be a known name (else Error listing them). Otherwise
// the template text is detected; a missing or unrecognised template falls back to deepseek3 when
// the vocabulary has the <｜User｜>/<｜Assistant｜> tokens (V2.5 and later) and to deepseek2
// otherwise, with a warning that names the choice.
ChatFormatChoice choose_chat_format(const std::optional<std::string>& template_text,
                                    std::string_view override_name, bool vocab_has_deepseek3_tokens);

}  // namespace tandem
