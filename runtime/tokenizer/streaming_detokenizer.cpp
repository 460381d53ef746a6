#include "runtime/tokenizer/streaming_detokenizer.h"

#include "runtime/tokenizer/utf8.h"

namespace tandem {

std::string StreamingDetokenizer::push(TokenId id) {
  tokenizer_.append_piece(id, render_control_, pending_);
  const size_t hold = utf8_incomplete_tail_length(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDetokenizer::finish() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace tandem
