// The timed runs of `tandem bench run` (llama-bench's pp N / tg N), shared with `tandem tune`,
// which measures its candidate plans with the same code.
#pragma once

#include <cstdint>

#include "runtime/model/causal_lm.h"

namespace tandem::tools {

// pp N: a prompt of n random tokens from an empty cache in one forward; tokens per second.
double prompt_tokens_per_s(CausalLm& lm, int n, uint32_t seed);
// tg N: n single-token steps from an empty cache; tokens per second.
double generate_tokens_per_s(CausalLm& lm, int n, uint32_t seed);

}  // namespace tandem::tools
