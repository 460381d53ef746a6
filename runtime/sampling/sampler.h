// Picks the next token from a row of logits. Stages, in order:
//   penalties over the last `penalty_window` accepted tokens (repeat, presence, frequency)
//   temperature == 0: greedy argmax, done
//   temperature scaling -> top-k -> softmax -> top-p -> min-p -> seeded draw
// Temperature is applied before the cuts (as Hugging Face does), so top-p and min-p act on the
// distribution that is actually sampled. A Sampler with a given seed and the same logits and
// accepted tokens gives the same choices on every platform.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_set>
#include <vector>

#include "runtime/sampling/sampling_stages.h"

namespace tandem {

struct SamplerConfig {
  float temperature = 0.6f;  // 0: greedy
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // in (0, 1]; 1: off
  float min_p = 0.05f;       // in [0, 1); 0: off
  float repeat_penalty = 1.0f;     // >= 1 in practice, must be > 0; 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int penalty_window = 64;   // how many recent tokens the penalties look at; 0: off
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // tokens that end generation (EOS, end of turn)
};

// Throws Error naming the first invalid option (as its command-line spelling, e.g. "--top-p").
void validate(const SamplerConfig& config);

class Sampler {
 public:
  explicit Sampler(SamplerConfig config);  // validates

  const SamplerConfig& config() const { return config_; }

  // Chooses a token from one row of logits (n_vocab values). Does not accept it.
  int32_t sample(std::span<const float> logits);
  // Same, drawing only from tokens whose allowed[id] is non-zero (after the penalties, before
  // temperature and the cuts, so those act on the allowed tokens). Error when none is allowed.
  int32_t sample(std::span<const float> logits, std::span<const uint8_t> allowed);
  // Records a token as generated (or fed) so later penalties see it.
  void accept(int32_t token);
  bool is_stop(int32_t token) const { return stop_.contains(token); }
  void add_stop_token(int32_t token) { stop_.insert(token); }
  // Forgets the penalty window and restarts the random stream from the seed.
  void reset();

 private:
  SamplerConfig config_;
  std::unordered_set<int32_t> stop_;
  std::deque<int32_t> recent_;
  std::vector<int32_t> recent_scratch_;
  std::mt19937_64 rng_;
};

}  // namespace tandem
