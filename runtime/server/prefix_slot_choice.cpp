#include "runtime/server/prefix_slot_choice.h"

#include <algorithm>

namespace tandem::server {

size_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

SlotChoice choose_prefix_slot(std::span<const SlotView> slots, std::span<const TokenId> prompt) {
  const int64_t limit = prompt.empty() ? 0 : int64_t(prompt.size()) - 1;
  int best_free = -1, lru_free = -1, best_busy = -1;
  int64_t best_free_len = 0, best_busy_len = 0;
  for (int i = 0; i < int(slots.size()); ++i) {
    const int64_t len = std::min<int64_t>(int64_t(common_prefix(slots[i].tokens, prompt)), limit);
    if (slots[i].busy) {
      if (len > best_busy_len) best_busy = i, best_busy_len = len;
      continue;
    }
    if (lru_free < 0 || slots[i].last_used < slots[lru_free].last_used) lru_free = i;
    if (len > best_free_len) best_free = i, best_free_len = len;
  }
  SlotChoice c;
  if (lru_free < 0) return c;
  if (best_busy >= 0 && best_busy_len > best_free_len) {
    c.slot = lru_free;
    c.reuse = best_busy_len;
    c.copy_from = best_busy;
  } else if (best_free >= 0) {
    c.slot = best_free;
    c.reuse = best_free_len;
  } else {
    c.slot = lru_free;  // nothing shared: evict the least recently used
  }
  return c;
}

}  // namespace tandem::server
