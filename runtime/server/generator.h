// Runs completion requests on one loaded model, one at a time (tandem serve --parallel 1).
//
// generate() runs under the generator's mutex, so concurrent requests queue. Like ChatSession,
// the generator remembers what the model saw last (tokens and text, CompletionEngine's history
// of one): a prompt whose text extends that text reuses its tokens, and the part of the KV
// cache that is a prefix of the new prompt is not fed again. CausalLm can only append or
// reset, so any other prompt empties the cache.
#pragma once

#include <atomic>
#include <mutex>
#include <span>
#include <vector>

#include "runtime/server/completion_engine.h"

namespace tandem {
class CausalLm;
}  // namespace tandem

namespace tandem::server {

class Generator : public CompletionEngine {
 public:
  Generator(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options);

  // Generates under the mutex. should_stop is polled once the mutex is held, before any prompt
  // token is fed, and before every token. A model error empties the cache and propagates.
  GenerationOutcome generate(const PreparedPrompt& prompt, const CompletionRequest& request, const TextSink& sink,
                             const std::function<bool()>& should_stop = {}) override;
  EngineStats stats() const override;

  // Tokens now in the model's KV cache (for tests and logs).
  std::vector<TokenId> cached_tokens() const;

 private:
  void feed(std::span<const TokenId> tokens, std::vector<float>& last_logits);

  CausalLm& lm_;
  std::atomic<bool> running_{false};
  std::atomic<int64_t> cached_count_{0};
  // One generation at a time; guards the model and cached_tokens_.
  mutable std::mutex generation_mutex_;
  std::vector<TokenId> cached_tokens_;  // what the model's KV cache holds
};

}  // namespace tandem::server
