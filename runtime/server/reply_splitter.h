// The server's use of ReasoningSplitter: a chat reply split into reasoning and content as it
// streams. ReasoningSplitter drops the whitespace that starts a reply while it waits to see
// whether <think> follows; a reply that turns out to have no reasoning gets that whitespace
// back, so a model that never reasons answers exactly what it generated.
#pragma once

#include <string>
#include <string_view>

#include "runtime/chat/reasoning_splitter.h"

namespace tandem::server {

class ReplySplitter {
 public:
  // prompt_text: the rendered prompt (a prompt that opens <think> starts the reply inside the
  // reasoning); enabled false: everything is content, as it came.
  ReplySplitter(std::string_view prompt_text, bool enabled);

  ReasoningPiece push(std::string_view text);
  ReasoningPiece finish();

 private:
  ReasoningPiece restore_leading_space(ReasoningPiece piece);

  bool enabled_;
  ReasoningSplitter splitter_;
  bool settled_ = false;  // something came out (or the reply started in the reasoning)
  bool past_leading_ = false;  // a character other than whitespace arrived
  std::string leading_;        // the reply's leading whitespace while nothing came out
};

}  // namespace tandem::server
