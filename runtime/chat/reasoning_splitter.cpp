#include "runtime/chat/reasoning_splitter.h"

#include <algorithm>

namespace tandem {
namespace {

constexpr std::string_view kSpace = " \t\r\n";

// Length of the longest suffix of s that is a proper prefix of tag (it may yet become tag).
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_in_reasoning, std::string open_tag, std::string close_tag)
    : state_(starts_in_reasoning ? State::Reasoning : State::Start),
      open_(std::move(open_tag)),
      close_(std::move(close_tag)),
      saw_reasoning_(starts_in_reasoning) {}

ReasoningSplitter::ReasoningSplitter(const ReasoningSplitOptions& o)
    : ReasoningSplitter(o.starts_in_reasoning, o.open_tag, o.close_tag) {
  keep_leading_space_ = o.keep_leading_space;
}

bool ReasoningSplitter::prompt_opens_reasoning(std::string_view prompt_text, std::string_view open_tag,
                                               std::string_view close_tag) {
  const size_t open = prompt_text.rfind(open_tag);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt_text.rfind(close_tag);
  return close == std::string_view::npos || close < open;
}

void ReasoningSplitter::emit(ReasoningPiece& out, std::string_view text, bool reasoning) {
  if (skip_space_) {
    const size_t b = text.find_first_not_of(kSpace);
    if (b == std::string_view::npos) return;
    text.remove_prefix(b);
    skip_space_ = false;
  }
  (reasoning ? out.reasoning : out.content) += text;
}

ReasoningPiece ReasoningSplitter::push(std::string_view text) {
  ReasoningPiece out;
  held_ += text;
  for (;;) {
    if (state_ == State::Start) {
      const size_t b = held_.find_first_not_of(kSpace);
      if (b == std::string::npos) return out;  // only whitespace so far
      const std::string_view rest = std::string_view(held_).substr(b);
      if (rest.size() < open_.size() && open_.starts_with(rest)) return out;  // maybe <think>
      if (rest.starts_with(open_)) {
        held_.erase(0, b + open_.size());
        state_ = State::Reasoning;
        saw_reasoning_ = true;
        skip_space_ = true;
        continue;
      }
      state_ = State::Content;
      if (keep_leading_space_) skip_space_ = false;  // no reasoning: the reply as it came
      continue;
    }
    if (state_ == State::Reasoning) {
      const size_t at = held_.find(close_);
      if (at != std::string::npos) {
        emit(out, std::string_view(held_).substr(0, at), true);
        held_.erase(0, at + close_.size());
        state_ = State::Content;
        skip_space_ = true;
        continue;
      }
      const size_t keep = partial_tag_suffix(held_, close_);
      emit(out, std::string_view(held_).substr(0, held_.size() - keep), true);
      held_.erase(0, held_.size() - keep);
      return out;
    }
    emit(out, held_, false);
    held_.clear();
    return out;
  }
}

ReasoningPiece ReasoningSplitter::finish() {
  ReasoningPiece out;
  if (held_.empty()) return out;
  if (state_ == State::Start && keep_leading_space_) skip_space_ = false;
  emit(out, held_, state_ == State::Reasoning);
  held_.clear();
  return out;
}

}  // namespace tandem
