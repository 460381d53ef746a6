// Argument checks shared by dequantize_row and quantize_row.
#pragma once

#include <cstdint>
#include <string_view>

#include "runtime/quant/ggml_type.h"

namespace tandem {

// Number of blocks in a row of n elements of type; throws Error naming the type and n when n is
// negative or not a whole number of blocks. `what` names the caller in the message.
int64_t checked_block_count(std::string_view what, GgmlType type, int64_t n);

// Error naming the type: tandem has no codec for it.
[[noreturn]] void fail_unsupported(std::string_view what, GgmlType type);

}  // namespace tandem
