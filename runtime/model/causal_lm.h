// A language model that turns token ids into next-token logits, keeping its own KV cache.
#pragma once

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

}  // namespace tandem
