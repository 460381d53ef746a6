// Deterministic pseudo-random weights: the values of a row depend only on the seed, the tensor
// name and the row index, so any split of the work across threads writes the same file.
#pragma once

#include <cstdint>

#include "tools/modelgen/deepseek2_tensor_plan.h"

namespace tandem::modelgen {

// Fills n_rows rows (of t.info.shape[0] floats each) starting at first_row.
void fill_weights(const PlannedTensor& t, uint64_t seed, int64_t first_row, int64_t n_rows, float* out);

}  // namespace tandem::modelgen

namespace tandem::modelgen {

// Fills n_rows quantized rows of t by drawing each block from a pool of pool_blocks
// pre-quantized blocks (block_bytes each), the choice again depending only on seed, name, row.
void fill_from_block_pool(const PlannedTensor& t, uint64_t seed, int64_t first_row, int64_t n_rows,
                          const uint8_t* pool, int64_t pool_blocks, uint64_t block_bytes, uint8_t* out);

}  // namespace tandem::modelgen
