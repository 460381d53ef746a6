#include "runtime/server/reply_splitter.h"

namespace tandem::server {

ReplySplitter::ReplySplitter(std::string_view prompt_text, bool enabled)
    : enabled_(enabled),
      splitter_(enabled && ReasoningSplitter::prompt_opens_reasoning(prompt_text)),
      settled_(splitter_.in_reasoning()) {}

ReasoningPiece ReplySplitter::restore_leading_space(ReasoningPiece piece) {
  if (settled_ || piece.empty()) return piece;
  settled_ = true;
  if (!splitter_.saw_reasoning()) piece.content.insert(0, leading_);
  leading_.clear();
  return piece;
}

ReasoningPiece ReplySplitter::push(std::string_view text) {
  if (!enabled_) return ReasoningPiece{"", std::string(text)};
  if (!settled_ && !past_leading_) {
    // Only the whitespace before the first other character is kept.
    const size_t b = text.find_first_not_of(" \t\r\n");
    leading_ += text.substr(0, b == std::string_view::npos ? text.size() : b);
    past_leading_ = b != std::string_view::npos;
  }
  return restore_leading_space(splitter_.push(text));
}

ReasoningPiece ReplySplitter::finish() {
  if (!enabled_) return {};
  ReasoningPiece piece = splitter_.finish();
  if (!settled_ && piece.empty() && !splitter_.saw_reasoning() && !leading_.empty()) {
    settled_ = true;
    piece.content = leading_;  // a reply of whitespace only
    return piece;
  }
  return restore_leading_space(std::move(piece));
}

}  // namespace tandem::server
