// Splits a reply streamed as text chunks into reasoning and content, DeepSeek-R1 style: a
// reply that starts with <think> (leading whitespace allowed) reasons until </think>, and
// everything after is content. When the prompt already opened <think> (R1 templates end the
// generation prompt with "<think>\n"), the reply starts inside the reasoning. Tags split across
// chunks are held back until they can be told apart; a <think> later in the reply is content.
// Whitespace at the start of the reasoning and of the content is dropped (the "\n" after
// <think>, the "\n\n" after </think>).
//
// With keep_leading_space, a reply that turns out to have no reasoning keeps the whitespace it
// started with (held while waiting to see whether <think> follows), so a model that never
// reasons answers exactly what it generated; the server uses that.
//
// The server can use it per request: construct with prompt_opens_reasoning(prompt_text), push
// each token's text, send .reasoning as reasoning_content / message.thinking and .content as
// content, finish() at the end.
#pragma once

#include <string>
#include <string_view>

namespace tandem {

struct ReasoningPiece {
  std::string reasoning;
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

struct ReasoningSplitOptions {
  bool starts_in_reasoning = false;
  bool keep_leading_space = false;  // a reply without reasoning keeps its leading whitespace
  std::string open_tag = "<think>";
  std::string close_tag = "</think>";
};

class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool starts_in_reasoning = false, std::string open_tag = "<think>",
                             std::string close_tag = "</think>");
  explicit ReasoningSplitter(const ReasoningSplitOptions& options);

  // The next chunk of the reply; returns the text that is settled now.
  ReasoningPiece push(std::string_view text);
  // The end of the reply: whatever was held back, as what it was (a partial tag is text).
  ReasoningPiece finish();

  bool in_reasoning() const { return state_ == State::Reasoning; }
  // True when the reply so far had reasoning (opened by the prompt or by the reply).
  bool saw_reasoning() const { return saw_reasoning_; }

  // True when prompt_text leaves open_tag open: its last open_tag comes after its last close_tag.
  static bool prompt_opens_reasoning(std::string_view prompt_text, std::string_view open_tag = "<think>",
                                     std::string_view close_tag = "</think>");

 private:
  enum class State { Start, Reasoning, Content };
  void emit(ReasoningPiece& out, std::string_view text, bool reasoning);

  State state_;
  std::string open_, close_;
  std::string held_;           // text not settled yet
  bool skip_space_ = true;     // at the start of a reasoning or content segment
  bool saw_reasoning_ = false;
  bool keep_leading_space_ = false;
};

}  // namespace tandem
