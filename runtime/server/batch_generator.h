// Continuous batching over a BatchedLm (tandem serve --parallel N): one scheduler thread owns
// the model; every request's generate() hands it a sequence and waits for its text.
//
// Each step the scheduler (1) gives waiting sequences a free slot, the one whose cache shares
// the longest prefix with the prompt (prefix_slot_choice.h: copy_prefix from a busy slot,
// truncate an idle one), (2) gathers one decode token from every decoding sequence and prompt
// chunks of the prefilling ones up to batch_tokens, so a long prompt is prefilled in chunks
// between the others' decode steps, (3) runs one BatchedLm::forward, (4) samples each
// sequence's next token with its own SequenceDecoder (sampler, stop strings, grammar). A
// sequence whose client left is dropped at the next step; one that never got a slot is never
// prefilled. Text goes back to the request's thread, which calls the sink, so a slow client
// never holds up the others.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/server/completion_engine.h"

namespace tandem {
class BatchedLm;
}  // namespace tandem

namespace tandem::server {

struct BatchOptions {
  // Tokens one model pass carries at most, decode tokens first (tandem serve --batch-tokens);
  // prompts advance by at least one token a pass, however many sequences decode.
  int64_t batch_tokens = 512;
};

class BatchGenerator : public CompletionEngine {
 public:
  // options.context_limit is capped at lm.max_context().
  BatchGenerator(BatchedLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template, GeneratorOptions options,
                 BatchOptions batch = {});
  ~BatchGenerator() override;  // cuts what still runs and joins the scheduler
  BatchGenerator(const BatchGenerator&) = delete;
  BatchGenerator& operator=(const BatchGenerator&) = delete;

  GenerationOutcome generate(const PreparedPrompt& prompt, const CompletionRequest& request, const TextSink& sink,
                             const std::function<bool()>& should_stop = {}) override;
  EngineStats stats() const override;
  int parallel() const override;

  // Sequences handed to the scheduler that have no slot yet (tests).
  size_t waiting() const { return waiting_count_.load(); }
  // What slot's cache holds (tests).
  std::vector<TokenId> slot_tokens(int slot) const;

 private:
  struct Sequence;
  struct Slot {
    std::vector<TokenId> tokens;  // what the slot's cache holds
    Sequence* owner = nullptr;    // the running sequence; null: idle
    uint64_t last_used = 0;
  };

  void schedule();                 // the scheduler thread
  void assign(std::deque<std::shared_ptr<Sequence>>& waiting);
  void step();                     // one forward over the running sequences
  void finish(Sequence& seq);      // the reply is over: hand it back, free the slot
  void fail_running(std::exception_ptr error);
  void count_kv_locked();          // kv_tokens_ from slots_ (mutex_ held)

  BatchedLm& lm_;
  BatchOptions batch_;
  mutable std::mutex mutex_;       // incoming_, stop_, slots_ (the scheduler writes them under it)
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Sequence>> incoming_;
  bool stop_ = false;
  std::vector<Slot> slots_;
  std::vector<std::shared_ptr<Sequence>> running_;  // scheduler thread only, in admission order
  uint64_t clock_ = 0;
  std::atomic<int> running_count_{0};
  std::atomic<size_t> waiting_count_{0};
  std::atomic<int64_t> kv_tokens_{0};
  std::atomic<uint64_t> steps_{0};
  std::atomic<int> max_in_step_{0};
  std::thread scheduler_;          // last: it runs over the members above
};

}  // namespace tandem::server
