// What the HTTP endpoints generate with: prepare() turns a request into prompt tokens and
// checks what depends on the model, generate() runs it. Two engines: Generator (one sequence at
// a time over a CausalLm) and BatchGenerator (continuous batching over a BatchedLm's slots).
//
// The engine remembers the text and tokens of recent generations (PromptHistory): a prompt
// whose text extends one of them reuses its tokens (earlier replies keep the tokens they were
// sampled as, so the KV cache prefix matches), and only the new text is encoded.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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
class Tokenizer;
}  // namespace tandem

namespace tandem::server {

struct GeneratorOptions {
  SamplerConfig sampling;        // defaults for the fields a request leaves unset (its seed unused)
  int64_t context_limit = 4096;  // tokens the KV cache may hold (per sequence)
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

// What /metrics shows of the engine, read at once whatever generation is doing.
struct EngineStats {
  int slots = 1;                    // sequences that may generate together (--parallel)
  int running = 0;                  // sequences generating now
  int64_t kv_tokens = 0;            // tokens held in the KV caches (all slots)
  int64_t kv_capacity = 0;          // slots x context
  uint64_t reused_prompt_tokens = 0;  // prompt tokens taken from the cache instead of fed
  uint64_t steps = 0;               // model passes of the batch scheduler
  int max_sequences_in_step = 0;    // the most sequences one pass carried
};

// Recent (prompt + reply) texts and the tokens the model saw for them, most recent first.
class PromptHistory {
 public:
  explicit PromptHistory(size_t capacity) : capacity_(capacity) {}
  // The tokens of the longest remembered text that starts `text` (same kind); text_size gets
  // its length. Empty when none.
  std::vector<TokenId> lookup(RequestKind kind, const std::string& text, size_t& text_size) const;
  void record(RequestKind kind, std::string text, std::vector<TokenId> tokens);
  void clear();

 private:
  struct Entry {
    RequestKind kind;
    std::string text;
    std::vector<TokenId> tokens;
  };
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
};

class CompletionEngine {
 public:
  // history: how many recent generations the text-level token reuse remembers.
  CompletionEngine(const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options, int64_t n_vocab,
                   size_t history);
  virtual ~CompletionEngine() = default;

  // Throws RequestError: context_length_exceeded (param messages / prompt), an empty prompt,
  // a token id outside the vocabulary.
  PreparedPrompt prepare(const CompletionRequest& request) const;

  // The request's sampling fields over the defaults, with a random seed when it sent none, and
  // the end-of-turn / EOS stop tokens.
  SamplerConfig sampler_config(const SamplingFields& fields) const;

  // Generates, blocking the caller until the reply is over; the sink is called on the caller's
  // thread. should_stop is polled once the generation may start, before any prompt token is
  // fed (a client that left while queued costs no prefill), and between tokens. A model error
  // propagates.
  virtual GenerationOutcome generate(const PreparedPrompt& prompt, const CompletionRequest& request,
                                     const TextSink& sink, const std::function<bool()>& should_stop = {}) = 0;
  virtual EngineStats stats() const = 0;
  // Sequences that may generate at once (the admission queue lets that many run).
  virtual int parallel() const { return 1; }

  const ChatTemplate& chat_template() const { return template_; }
  int64_t context_limit() const { return options_.context_limit; }
  // Generations that fed their prompt (ran a prefill), and the prompt tokens fed, since start.
  uint64_t prefills() const { return prefills_.load(); }
  uint64_t prefilled_tokens() const { return prefilled_tokens_.load(); }
  // The vocabulary as constrained sampling sees it (built on first use).
  std::shared_ptr<const ConstraintVocab> constraint_vocab() const;

 protected:
  // Remembers a finished generation for prepare()'s token reuse.
  void remember(const PreparedPrompt& prompt, std::span<const TokenId> produced);

  const Tokenizer& tokenizer_;
  ChatTemplate template_;
  GeneratorOptions options_;
  int64_t n_vocab_;
  std::vector<TokenId> stop_tokens_;
  std::atomic<uint64_t> prefills_{0};
  std::atomic<uint64_t> prefilled_tokens_{0};
  std::atomic<uint64_t> reused_tokens_{0};
  PromptHistory history_;

 private:
  mutable std::mutex vocab_mutex_;
  mutable std::shared_ptr<const ConstraintVocab> constraint_vocab_;
};

}  // namespace tandem::server
