// The reply side of one generation, token by token: sampling (with the request's sampler and,
// under a grammar, the constraint's mask), stop tokens and stop strings, the max_tokens and
// context limits, and the text handed to the sink as it becomes final. The caller owns the
// model: it feeds the prompt, then calls step() with each row of logits and feeds the token
// step() returns. Generator (one sequence) and BatchGenerator (many, one model pass per step)
// both drive it, so a reply is the same whichever runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/sampling/sampler.h"
#include "runtime/sampling/token_constraint.h"
#include "runtime/server/generator.h"
#include "runtime/server/stop_string_matcher.h"
#include "runtime/tokenizer/streaming_detokenizer.h"

namespace tandem::server {

class SequenceDecoder {
 public:
  // vocab: the constraint vocabulary (used only when prompt.grammar is set). context_limit: the
  // tokens the cache may hold. out.usage.prompt_tokens is set from the prompt.
  SequenceDecoder(const PreparedPrompt& prompt, const CompletionRequest& request, SamplerConfig sampling,
                  std::span<const TokenId> stop_tokens, const Tokenizer& tokenizer,
                  std::shared_ptr<const ConstraintVocab> vocab, int64_t context_limit, TextSink sink);

  // Samples from the logits after the last fed token; n_cached: tokens now in the cache.
  // Returns the token to feed next, or nullopt when the reply is over (outcome() is final).
  std::optional<TokenId> step(std::span<const float> logits, int64_t n_cached);
  // Ends the reply now (client gone, shutdown): out.cancelled, no tail emitted.
  void cancel();
  bool done() const { return done_; }

  GenerationOutcome& outcome() { return out_; }
  // What the model saw after the prompt: the generated tokens and the stop token, if any.
  std::vector<TokenId> produced() const;

 private:
  bool emit(std::string text);  // false once the sink refused
  void finish();                // emits the held-back tail (unless cancelled), fixes usage

  Sampler sampler_;
  std::vector<TokenId> stop_tokens_;
  int64_t context_limit_;
  int64_t max_tokens_;
  TextSink sink_;
  StreamingDetokenizer detok_;
  StopStringMatcher stops_;
  bool trim_;
  std::optional<TokenConstraint> constraint_;
  std::vector<uint8_t> mask_;
  std::optional<TokenId> stop_token_;
  bool done_ = false;
  GenerationOutcome out_;
};

}  // namespace tandem::server
