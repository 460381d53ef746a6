// Turns tokens into text one at a time for streaming output. A token may end in the middle of
// a UTF-8 character (byte-level BPE splits characters freely); those bytes are held back until
// the character completes, so every chunk returned is whole characters. Bytes that can no
// longer become a valid character are passed through as they are: the concatenation of all
// chunks plus finish() is always exactly decode(ids).
#pragma once

#include <string>

#include "runtime/tokenizer/tokenizer.h"

namespace tandem {

class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool render_control = false)
      : tokenizer_(tokenizer), render_control_(render_control) {}

  // The text that became complete with this token (possibly empty).
  std::string push(TokenId id);
  // Whatever is still held back (an unfinished character at the end of the stream).
  std::string finish();
  size_t held_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  bool render_control_;
  std::string pending_;
};

}  // namespace tandem
