// Cuts streamed text at the first occurrence of any stop string (the OpenAI `stop` field).
// Text that might be the start of a stop string is held back until the next piece decides it,
// so no part of a stop string is ever emitted, even when it spans several tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tandem::server {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);  // empty strings are ignored

  // Adds the next piece of text; returns what is now safe to emit. After a stop string was
  // found, returns only the text before it and ignores everything later.
  std::string push(std::string_view text);
  // The held-back tail once the stream ended without a stop string ("" after one).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace tandem::server
