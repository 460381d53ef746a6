// Runs completion requests on one loaded model, one at a time.
//
// prepare() turns a request into prompt tokens (the chat template for messages, the tokenizer
// for a text prompt) and checks what depends on the model: the prompt must fit the context and
// token ids must be in the vocabulary. generate() then runs under the generator's mutex, so
// concurrent requests queue. Like ChatSession, the generator remembers what the model saw last
// (tokens and text): a prompt whose text extends that text reuses its tokens (earlier replies
// keep the tokens they were sampled as), and the part of the KV cache that is a prefix of the
// new prompt is not fed again. CausalLm can only append or reset, so any other prompt empties
// the cache.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/chat_template.h"
#include "runtime/sampling/sampler.h"
#include "runtime/sampling/token_constraint.h"
#include "runtime/server/completion_request.h"
#include "runtime/server/openai_response.h"
#include "runtime/tokenizer/bpe_vocab.h"

namespace tandem {
class CausalLm;
class Tokenizer;
}  // namespace tandem

namespace tandem::server {

struct GeneratorOptions {
  SamplerConfig sampling;        // defaults for the fields a request leaves unset (its seed unused)
  int64_t context_limit = 4096;  // tokens the KV cache may hold
};

struct PreparedPrompt {
  RequestKind kind = RequestKind::Chat;
  std::vector<TokenId> tokens;
  std::string text;  // the rendered / given prompt text; empty for a prompt of token ids
  // deepseek2 chat: the template writes "Assistant: " + content but prompts with "Assistant:",
  // so the reply's leading space belongs to the template (as ChatSession stores it).
  bool trim_leading_space = false;
  // The grammar the reply is sampled under (structured output, a forced tool call); null: free.
  std::shared_ptr<const JsonGrammar> grammar;
  // How the reply spells tool calls (None: the request offers no tools).
  ToolCallFormat tool_format = ToolCallFormat::None;
};

struct GenerationOutcome {
  std::string text;  // everything emitted
  FinishReason finish = FinishReason::Length;
  Usage usage;
  bool cancelled = false;       // the sink or should_stop ended it early
  int64_t reused_tokens = 0;    // prompt tokens that came from the KV cache
  std::vector<TokenId> tokens;  // generated tokens (the stop token not included)
  bool prefilled = false;       // false: should_stop held before any prompt token was fed
  double constraint_seconds = 0;  // time spent computing token masks (constrained sampling)
  std::optional<std::chrono::steady_clock::time_point> first_token_at;  // when the first token was sampled
  double seconds = 0;           // time it held the model
  std::chrono::steady_clock::time_point started_at;  // when it took the model (before the prefill)
};

// Receives each piece of text as it becomes final; returns false to stop (client gone).
using TextSink = std::function<bool(std::string_view text)>;

class Generator {
 public:
  Generator(CausalLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options);

  // Throws RequestError: context_length_exceeded (param messages / prompt), an empty prompt,
  // a token id outside the vocabulary.
  PreparedPrompt prepare(const CompletionRequest& request) const;

  // The request's sampling fields over the defaults, with a random seed when it sent none, and
  // the end-of-turn / EOS stop tokens.
  SamplerConfig sampler_config(const SamplingFields& fields) const;

  // Generates under the mutex. should_stop is polled once the mutex is held, before any prompt
  // token is fed (a client that left while queued costs no prefill), and before every token.
  // A model error empties the cache and propagates.
  GenerationOutcome generate(const PreparedPrompt& prompt, const CompletionRequest& request, const TextSink& sink,
                             const std::function<bool()>& should_stop = {});

  const ChatTemplate& chat_template() const { return template_; }
  int64_t context_limit() const { return options_.context_limit; }
  // Tokens now in the model's KV cache (for tests and logs).
  std::vector<TokenId> cached_tokens() const;
  // Generations that fed their prompt (ran a prefill), and the prompt tokens fed, since start.
  uint64_t prefills() const { return prefills_.load(); }
  uint64_t prefilled_tokens() const { return prefilled_tokens_.load(); }
  // The vocabulary as constrained sampling sees it (built on first use).
  std::shared_ptr<const ConstraintVocab> constraint_vocab() const;

 private:
  void feed(std::span<const TokenId> tokens, std::vector<float>& last_logits);

  CausalLm& lm_;
  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  GeneratorOptions options_;
  std::vector<TokenId> stop_tokens_;
  std::atomic<uint64_t> prefills_{0};
  std::atomic<uint64_t> prefilled_tokens_{0};
  mutable std::mutex vocab_mutex_;
  mutable std::shared_ptr<const ConstraintVocab> constraint_vocab_;

  // One generation at a time; guards the model and cached_tokens_.
  mutable std::mutex generation_mutex_;
  std::vector<TokenId> cached_tokens_;  // what the model's KV cache holds
  // Held briefly: prepare() reads the last history while a generation may be running.
  mutable std::mutex history_mutex_;
  RequestKind history_kind_ = RequestKind::Chat;
  std::string history_text_;  // the text of history_tokens_ ("" when unknown)
  std::vector<TokenId> history_tokens_;
};

}  // namespace tandem::server
