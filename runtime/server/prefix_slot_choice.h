// Which KV-cache slot a new sequence takes (the batch scheduler's prefix cache): the free slot
// whose cached tokens share the longest prefix with the prompt, or, when a busy slot shares a
// longer one, the least recently used free slot with that prefix copied in. Idle slots keep
// their tokens until evicted this way, so a regenerated reply or an edited last message feeds
// only the changed tail.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/tokenizer/bpe_vocab.h"

namespace tandem::server {

struct SlotView {
  std::span<const TokenId> tokens;  // what the slot's cache holds
  bool busy = false;                // a running sequence owns it
  uint64_t last_used = 0;           // when its last sequence finished (0: never used)
};

struct SlotChoice {
  int slot = -1;        // -1: no free slot
  int64_t reuse = 0;    // prompt tokens already in the slot's cache (after the copy)
  int copy_from = -1;   // >= 0: copy_prefix(copy_from, slot, reuse) first
};

// At least the prompt's last token is left to feed (its logits start the reply).
SlotChoice choose_prefix_slot(std::span<const SlotView> slots, std::span<const TokenId> prompt);

// Length of the common prefix of a and b.
size_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b);

}  // namespace tandem::server
