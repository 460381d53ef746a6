#include "runtime/server/generator.h"

#include <algorithm>

#include "runtime/model/causal_lm.h"
#include "runtime/server/sequence_decoder.h"

namespace tandem::server {
namespace {

// Prompt tokens go through the model in slices so the logits buffer stays small.
constexpr size_t kFeedSlice = 128;

}  // namespace

Generator::Generator(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options)
    : CompletionEngine(tokenizer, std::move(chat_template), std::move(options), lm.n_vocab(), 1), lm_(lm) {
  lm_.reset();
}

std::vector<TokenId> Generator::cached_tokens() const {
  std::lock_guard lock(generation_mutex_);
  return cached_tokens_;
}

EngineStats Generator::stats() const {
  EngineStats s;
  s.slots = 1;
  s.running = running_ ? 1 : 0;
  s.kv_tokens = cached_count_.load();
  s.kv_capacity = options_.context_limit;
  s.reused_prompt_tokens = reused_tokens_.load();
  return s;
}

void Generator::feed(std::span<const TokenId> tokens, std::vector<float>& last_logits) {
  feed_in_slices(lm_, tokens, kFeedSlice, cached_tokens_, last_logits);
  cached_count_ = int64_t(cached_tokens_.size());
}

GenerationOutcome Generator::generate(const PreparedPrompt& p, const CompletionRequest& r, const TextSink& sink,
                                      const std::function<bool()>& should_stop) {
  SequenceDecoder seq(p, r, sampler_config(r.sampling), stop_tokens_, tokenizer_,
                      p.grammar ? constraint_vocab() : nullptr, options_.context_limit, sink);
  std::lock_guard lock(generation_mutex_);
  GenerationOutcome& out = seq.outcome();
  const auto t0 = std::chrono::steady_clock::now();
  out.started_at = t0;
  if (should_stop && should_stop()) {
    out.cancelled = true;
    return out;
  }
  struct Running {
    std::atomic<bool>& flag;
    explicit Running(std::atomic<bool>& f) : flag(f) { flag = true; }
    ~Running() { flag = false; }
  } running(running_);
  const std::vector<TokenId>& prompt = p.tokens;
  try {
    // Reuse the cached prefix when it is one; feed at least the last prompt token for its logits.
    size_t common = 0;
    const size_t n = std::min(cached_tokens_.size(), prompt.size());
    while (common < n && cached_tokens_[common] == prompt[common]) ++common;
    if (common < cached_tokens_.size() || common == prompt.size()) {
      lm_.reset();
      cached_tokens_.clear();
      cached_count_ = 0;
      common = 0;
    }
    out.reused_tokens = int64_t(common);
    reused_tokens_ += common;
    std::vector<float> logits;
    ++prefills_;
    prefilled_tokens_ += prompt.size() - common;
    out.prefilled = true;
    feed(std::span(prompt).subspan(common), logits);
    for (;;) {
      if (should_stop && should_stop()) {
        seq.cancel();
        break;
      }
      const std::optional<TokenId> next = seq.step(logits, int64_t(cached_tokens_.size()));
      if (!next) break;
      feed(std::span(&*next, 1), logits);
    }
    // What the model saw and produced, for the next request's prefix check.
    remember(p, seq.produced());
  } catch (...) {
    // The cache may hold a partial generation: start the next one from an empty cache.
    lm_.reset();
    cached_tokens_.clear();
    cached_count_ = 0;
    history_.clear();
    throw;
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace tandem::server
