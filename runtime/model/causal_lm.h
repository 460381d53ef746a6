// A language model that turns token ids into next-token logits, keeping its own KV cache.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tandem {

class CausalLm {
 public:
  virtual ~CausalLm() = default;
  virtual int64_t n_vocab() const = 0;
  virtual int64_t n_past() const = 0;   // tokens already in the cache
  virtual void reset() = 0;             // empty the cache
  // Appends tokens at positions n_past()...; logits gets tokens.size() x n_vocab values.
  virtual void forward(std::span<const int32_t> tokens, std::vector<float>& logits) = 0;
  // The same, keeping only the last token's logits (n_vocab values; empty for no tokens). A pass
  // may override it to skip the output head for the other tokens, as llama.cpp's prompt
  // processing does.
  virtual void forward_last(std::span<const int32_t> tokens, std::vector<float>& last_logits) {
    forward(tokens, last_logits);
    if (!last_logits.empty()) last_logits.erase(last_logits.begin(), last_logits.end() - std::ptrdiff_t(n_vocab()));
  }
};

// Feeds a prompt through lm in slices of at most slice_tokens, so the logits buffer (slice x
// n_vocab floats) stays small for long prompts; appends what was fed to `fed` and leaves the
// logits after the last token in last_logits (untouched when tokens is empty).
inline void feed_in_slices(CausalLm& lm, std::span<const int32_t> tokens, size_t slice_tokens,
                           std::vector<int32_t>& fed, std::vector<float>& last_logits) {
  std::vector<float> logits;
  for (size_t at = 0; at < tokens.size(); at += slice_tokens) {
    const auto slice = tokens.subspan(at, std::min(slice_tokens, tokens.size() - at));
    lm.forward_last(slice, logits);
    fed.insert(fed.end(), slice.begin(), slice.end());
    if (at + slice.size() == tokens.size()) last_logits.swap(logits);
  }
}

}  // namespace tandem
