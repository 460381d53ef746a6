#include "runtime/model/sequence_chunks.h"

#include <sstream>
#include <stdexcept>
#include <vector>

namespace tandem {
namespace {

template <typename... Parts>
[[noreturn]] void invalid(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw std::invalid_argument(s.str());
}

}  // namespace

void check_slot(const BatchedLm& lm, int slot, const char* what) {
  if (slot < 0 || slot >= lm.slots())
    invalid(what, ": slot ", slot, " is outside the model's ", lm.slots(), " sequence slots");
}

void check_chunks(const BatchedLm& lm, std::span<const SequenceChunk> chunks) {
  std::vector<bool> seen(size_t(lm.slots() > 0 ? lm.slots() : 0), false);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SequenceChunk& c = chunks[i];
    check_slot(lm, c.slot, "forward");
    if (seen[size_t(c.slot)]) invalid("forward: slot ", c.slot, " appears in more than one chunk");
    seen[size_t(c.slot)] = true;
    if (c.tokens.empty()) invalid("forward: chunk ", i, " (slot ", c.slot, ") has no tokens");
    const int64_t past = lm.n_past(c.slot), n = int64_t(c.tokens.size());
    if (past + n > lm.max_context())
      invalid("forward: slot ", c.slot, " holds ", past, " tokens; ", n, " more exceed its context of ",
              lm.max_context(), " (raise --ctx)");
    for (int32_t id : c.tokens)
      if (id < 0 || id >= lm.n_vocab())
        invalid("forward: token id ", id, " (slot ", c.slot, ") is outside the vocabulary of ", lm.n_vocab());
  }
}

void check_truncate(const BatchedLm& lm, int slot, int64_t n) {
  check_slot(lm, slot, "truncate");
  if (n < 0 || n > lm.n_past(slot))
    invalid("truncate: slot ", slot, " holds ", lm.n_past(slot), " tokens; cannot keep ", n);
}

void check_copy_prefix(const BatchedLm& lm, int src, int dst, int64_t n) {
  check_slot(lm, src, "copy_prefix");
  check_slot(lm, dst, "copy_prefix");
  if (src == dst) invalid("copy_prefix: source and destination are both slot ", src);
  if (n < 0 || n > lm.n_past(src))
    invalid("copy_prefix: slot ", src, " holds ", lm.n_past(src), " tokens; cannot copy ", n);
}

int64_t total_rows(std::span<const SequenceChunk> chunks) {
  int64_t n = 0;
  for (const SequenceChunk& c : chunks) n += int64_t(c.tokens.size());
  return n;
}

}  // namespace tandem
