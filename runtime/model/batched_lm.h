// A model that keeps the KV caches of several sequences (slots) and runs tokens of several of
// them in one pass: the server's continuous batching decodes every running sequence in one step
// (routed experts and every matrix batched across the sequences' rows, attention per sequence
// over its own cache) and interleaves prompt chunks with the others' decode tokens.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tandem {

// Tokens of one sequence for a pass: appended to slot's cache at positions n_past(slot)...
struct SequenceChunk {
  int slot = 0;
  std::span<const int32_t> tokens;
};

class BatchedLm {
 public:
  virtual ~BatchedLm() = default;
  virtual int64_t n_vocab() const = 0;
  virtual int slots() const = 0;             // sequences the model holds caches for
  virtual int64_t max_context() const = 0;   // cache rows per slot
  virtual int64_t n_past(int slot) const = 0;
  // Keeps the first n tokens of slot's cache (n <= n_past(slot)); 0 empties it. Rows past n are
  // overwritten by the next tokens fed (no data moves).
  virtual void truncate(int slot, int64_t n) = 0;
  // Makes dst's cache the first n tokens of src's (n <= n_past(src), dst != src): a shared
  // prefix (one system prompt, a regenerated reply) is fed once.
  virtual void copy_prefix(int src, int dst, int64_t n) = 0;
  // Runs every chunk in one pass. Chunks name distinct slots, none empty, and each must fit
  // max_context(). last_logits gets chunks.size() x n_vocab() values: row i is the logits after
  // chunk i's last token. Throws std::invalid_argument for a bad slot or chunk.
  virtual void forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) = 0;
};

}  // namespace tandem
