// Argument checks every BatchedLm shares: a pass calls these first, so a bad slot, an empty or
// oversize chunk, a slot named twice or a token outside the vocabulary is an
// std::invalid_argument naming the problem before anything is computed or cached.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/model/batched_lm.h"

namespace tandem {

void check_slot(const BatchedLm& lm, int slot, const char* what);
void check_chunks(const BatchedLm& lm, std::span<const SequenceChunk> chunks);
void check_truncate(const BatchedLm& lm, int slot, int64_t n);
void check_copy_prefix(const BatchedLm& lm, int src, int dst, int64_t n);

// Rows of the concatenated batch: chunk i's tokens are rows [first_row(i), first_row(i) + size).
int64_t total_rows(std::span<const SequenceChunk> chunks);

}  // namespace tandem
