// The timed runs of `tandem bench run` (llama-bench's pp N / tg N), shared with `tandem tune`,
// which measures its candidate plans with the same code.
#pragma once

#include <cstdint>

#include "runtime/model/batched_lm.h"
#include "runtime/model/causal_lm.h"

namespace tandem::tools {

// pp N: a prompt of n random tokens from an empty cache in one forward; tokens per second.
double prompt_tokens_per_s(CausalLm& lm, int n, uint32_t seed);
// tg N: n single-token steps from an empty cache; tokens per second.
double generate_tokens_per_s(CausalLm& lm, int n, uint32_t seed);

// "pp P x N" and "tg G x N": slots 0..n_seq-1 emptied, each given its own prompt of `prompt`
// random tokens (prefilled together: one batched forward of n_seq chunks), then `generate`
// decode passes of one token per sequence. Aggregate tokens per second of both phases.
struct ParallelSpeed {
  double prompt_tokens_per_s = 0;
  double generate_tokens_per_s = 0;
};
ParallelSpeed parallel_tokens_per_s(BatchedLm& lm, int n_seq, int prompt, int generate, uint32_t seed);

}  // namespace tandem::tools
