#include "runtime/sampling/sampler.h"

#include <cmath>

#include "runtime/core/error.h"

namespace tandem {

void validate(const SamplerConfig& c) {
  if (!std::isfinite(c.temperature) || c.temperature < 0.0f)
    fail("--temp ", c.temperature, ": must be >= 0 (0 means greedy)");
  if (c.top_k < 0) fail("--top-k ", c.top_k, ": must be >= 0 (0 means off)");
  if (!(c.top_p > 0.0f && c.top_p <= 1.0f)) fail("--top-p ", c.top_p, ": must be in (0, 1]");
  if (!(c.min_p >= 0.0f && c.min_p < 1.0f)) fail("--min-p ", c.min_p, ": must be in [0, 1)");
  if (!std::isfinite(c.repeat_penalty) || c.repeat_penalty <= 0.0f)
    fail("--repeat-penalty ", c.repeat_penalty, ": must be > 0 (1 means off)");
  if (!std::isfinite(c.presence_penalty)) fail("--presence-penalty: must be finite");
  if (!std::isfinite(c.frequency_penalty)) fail("--frequency-penalty: must be finite");
  if (c.penalty_window < 0) fail("--repeat-last-n ", c.penalty_window, ": must be >= 0");
}

Sampler::Sampler(SamplerConfig config) : config_(std::move(config)), rng_(config_.seed) {
  validate(config_);
  stop_.insert(config_.stop_tokens.begin(), config_.stop_tokens.end());
}

int32_t Sampler::sample(std::span<const float> logits) { return sample(logits, {}); }

int32_t Sampler::sample(std::span<const float> logits, std::span<const uint8_t> allowed) {
  if (logits.empty()) fail("sampler: empty logits row");
  std::vector<TokenCandidate> c = make_candidates(logits);
  if (!recent_.empty()) {
    recent_scratch_.assign(recent_.begin(), recent_.end());
    apply_penalties(c, recent_scratch_,
                    {config_.repeat_penalty, config_.presence_penalty, config_.frequency_penalty});
  }
  if (!allowed.empty()) {
    std::erase_if(c, [&](const TokenCandidate& t) { return size_t(t.id) >= allowed.size() || !allowed[size_t(t.id)]; });
    if (c.empty()) fail("sampler: the constraint allows no token");
  }
  if (config_.temperature == 0.0f) return argmax(c);
  apply_temperature(c, config_.temperature);
  top_k(c, config_.top_k);
  softmax(c);
  top_p(c, config_.top_p);
  min_p(c, config_.min_p);
  return draw(c, rng_);
}

void Sampler::accept(int32_t token) {
  if (config_.penalty_window == 0) return;
  recent_.push_back(token);
  while (recent_.size() > size_t(config_.penalty_window)) recent_.pop_front();
}

void Sampler::reset() {
  recent_.clear();
  rng_.seed(config_.seed);
}

}  // namespace tandem
