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
};

// Feeds a prompt through lm in slices of at most slice_tokens, so the logits buffer (slice x
// n_vocab floats) stays small for long prompts; appends what was fed to `fed` and leaves the
// logits after the last token in last_logits (untouched when tokens is empty).
inline void feed_in_slices(CausalLm& lm, std::span<const int32_t> tokens, size_t slice_tokens,
                           std::vector<int32_t>& fed, std::vector<float>& last_logits) {
  std::vector<float> logits;
  const size_t n_vocab = size_t(lm.n_vocab());
  for (size_t at = 0; at < tokens.size(); at += slice_tokens) {
    const auto slice = tokens.subspan(at, std::min(slice_tokens, tokens.size() - at));
    lm.forward(slice, logits);
    fed.insert(fed.end(), slice.begin(), slice.end());
    if (at + slice.size() == tokens.size()) last_logits.assign(logits.end() - std::ptrdiff_t(n_vocab), logits.end());
  }
}

}  // namespace tandem
