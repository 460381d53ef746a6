#include "tools/commands/model_speed.h"

#include <chrono>
#include <random>
#include <vector>

namespace tandem::tools {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int32_t> random_tokens(int n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(n_vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = pick(rng);
  return t;
}

}  // namespace

double prompt_tokens_per_s(CausalLm& lm, int n, uint32_t seed) {
  const auto tokens = random_tokens(n, lm.n_vocab(), seed);
  std::vector<float> logits;
  lm.reset();
  const auto t0 = std::chrono::steady_clock::now();
  lm.forward_last(tokens, logits);  // as llama-bench: the output head for the last token only
  return double(n) / seconds_since(t0);
}

double generate_tokens_per_s(CausalLm& lm, int n, uint32_t seed) {
  const auto tokens = random_tokens(n, lm.n_vocab(), seed);
  std::vector<float> logits;
  lm.reset();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) lm.forward({&tokens[size_t(i)], 1}, logits);
  return double(n) / seconds_since(t0);
}

ParallelSpeed parallel_tokens_per_s(BatchedLm& lm, int n_seq, int prompt, int generate, uint32_t seed) {
  std::vector<std::vector<int32_t>> prompts, next;
  std::vector<SequenceChunk> chunks;
  for (int s = 0; s < n_seq; ++s) {
    lm.truncate(s, 0);
    prompts.push_back(random_tokens(prompt, lm.n_vocab(), seed + uint32_t(s)));
    next.push_back(random_tokens(generate, lm.n_vocab(), seed + 1000u + uint32_t(s)));
  }
  for (int s = 0; s < n_seq; ++s) chunks.push_back({s, prompts[size_t(s)]});
  std::vector<float> logits;
  ParallelSpeed r;
  auto t0 = std::chrono::steady_clock::now();
  lm.forward(chunks, logits);
  r.prompt_tokens_per_s = double(prompt) * n_seq / seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < generate; ++i) {
    for (int s = 0; s < n_seq; ++s) chunks[size_t(s)].tokens = {&next[size_t(s)][size_t(i)], 1};
    lm.forward(chunks, logits);
  }
  r.generate_tokens_per_s = double(generate) * n_seq / seconds_since(t0);
  return r;
}

}  // namespace tandem::tools
