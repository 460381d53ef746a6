#include "runtime/server/batch_generator.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "runtime/core/error.h"
#include "runtime/model/batched_lm.h"
#include "runtime/server/prefix_slot_choice.h"
#include "runtime/server/sequence_decoder.h"

namespace tandem::server {
namespace {

using Clock = std::chrono::steady_clock;

// How often a request's thread looks at should_stop while it waits for text.
constexpr auto kPoll = std::chrono::milliseconds(20);

GeneratorOptions capped(GeneratorOptions o, const BatchedLm& lm) {
  o.context_limit = std::min(o.context_limit, lm.max_context());
  return o;
}

}  // namespace

// One request's generation. The request's thread and the scheduler share it: the scheduler
// alone touches the decoder and the slot state; text and the end cross under `m`.
struct BatchGenerator::Sequence {
  explicit Sequence(const PreparedPrompt& p) : prompt(p) {}
  const PreparedPrompt& prompt;
  std::unique_ptr<SequenceDecoder> decoder;
  // Scheduler side.
  int slot = -1;
  size_t fed = 0;                 // prompt tokens in the cache
  std::optional<TokenId> next;    // the sampled token to feed (decoding)
  Clock::time_point started_at;
  // Shared.
  std::atomic<bool> cancel{false};  // client gone / sink refused / shutdown
  std::mutex m;
  std::condition_variable cv;
  std::string pending;            // text not yet given to the sink
  bool finished = false;
  std::exception_ptr error;
};

BatchGenerator::BatchGenerator(BatchedLm& lm, const Tokenizer& tokenizer, ChatTemplate chat_template,
                               GeneratorOptions options, BatchOptions batch)
    : CompletionEngine(tokenizer, std::move(chat_template), capped(std::move(options), lm), lm.n_vocab(),
                       size_t(std::max(lm.slots(), 1)) * 2),
      lm_(lm),
      batch_(batch),
      slots_(size_t(std::max(lm.slots(), 0))) {
  if (lm.slots() < 1) fail("the batched model has no slots");
  batch_.batch_tokens = std::max<int64_t>(batch_.batch_tokens, 1);
  for (int s = 0; s < lm.slots(); ++s) lm_.truncate(s, 0);
  scheduler_ = std::thread([this] { schedule(); });
}

BatchGenerator::~BatchGenerator() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  scheduler_.join();
}

int BatchGenerator::parallel() const { return lm_.slots(); }

std::vector<TokenId> BatchGenerator::slot_tokens(int slot) const {
  std::lock_guard lock(mutex_);
  return slot >= 0 && slot < int(slots_.size()) ? slots_[size_t(slot)].tokens : std::vector<TokenId>();
}

EngineStats BatchGenerator::stats() const {
  EngineStats s;
  s.slots = int(slots_.size());
  s.running = running_count_.load();
  s.kv_tokens = kv_tokens_.load();
  s.kv_capacity = int64_t(slots_.size()) * options_.context_limit;
  s.reused_prompt_tokens = reused_tokens_.load();
  s.steps = steps_.load();
  s.max_sequences_in_step = max_in_step_.load();
  return s;
}

GenerationOutcome BatchGenerator::generate(const PreparedPrompt& p, const CompletionRequest& r, const TextSink& sink,
                                           const std::function<bool()>& should_stop) {
  auto seq = std::make_shared<Sequence>(p);
  Sequence* s = seq.get();
  // The scheduler's sink: queue the text for this thread; false once the client is gone.
  s->decoder = std::make_unique<SequenceDecoder>(p, r, sampler_config(r.sampling), stop_tokens_, tokenizer_,
                                                 p.grammar ? constraint_vocab() : nullptr, options_.context_limit,
                                                 [s](std::string_view text) {
                                                   {
                                                     std::lock_guard lock(s->m);
                                                     s->pending += text;
                                                   }
                                                   s->cv.notify_all();
                                                   return !s->cancel.load();
                                                 });
  if (should_stop && should_stop()) {  // gone already: never reaches the scheduler
    GenerationOutcome out = std::move(s->decoder->outcome());
    out.started_at = Clock::now();
    out.cancelled = true;
    return out;
  }
  {
    std::lock_guard lock(mutex_);
    incoming_.push_back(seq);
    ++waiting_count_;
  }
  wake_.notify_all();
  bool refused = false;  // the sink said the client is gone
  for (;;) {
    std::string text;
    bool finished;
    {
      std::unique_lock lock(s->m);
      s->cv.wait_for(lock, kPoll, [&] { return !s->pending.empty() || s->finished; });
      text.swap(s->pending);
      finished = s->finished;
    }
    if (!text.empty() && sink && !refused && !sink(text)) {
      refused = true;
      s->cancel = true;
      wake_.notify_all();
    }
    if (finished) break;
    if (!s->cancel && should_stop && should_stop()) {
      s->cancel = true;
      wake_.notify_all();
    }
  }
  if (s->error) std::rethrow_exception(s->error);
  GenerationOutcome out = std::move(s->decoder->outcome());
  if (refused) out.cancelled = true;
  return out;
}

void BatchGenerator::schedule() {
  std::deque<std::shared_ptr<Sequence>> waiting;  // admitted, no slot yet
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // With sequences running, only a short look for new ones; idle, sleep until one comes.
      const auto idle = [&] { return stop_ || !incoming_.empty(); };
      if (running_.empty() && waiting.empty())
        wake_.wait(lock, idle);
      else if (running_.empty())
        wake_.wait_for(lock, kPoll, idle);  // waiting for a slot or for its client
      if (stop_) break;
      while (!incoming_.empty()) {
        waiting.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
    }
    // Clients that left: a running sequence ends at this step, a waiting one is never fed.
    for (size_t i = 0; i < running_.size();) {
      Sequence& seq = *running_[i];
      if (seq.cancel) {
        seq.decoder->cancel();
        finish(seq);
      } else {
        ++i;
      }
    }
    for (auto it = waiting.begin(); it != waiting.end();) {
      if ((*it)->cancel) {
        (*it)->decoder->cancel();
        finish(**it);
        it = waiting.erase(it);
        --waiting_count_;
      } else {
        ++it;
      }
    }
    assign(waiting);
    if (!running_.empty()) step();
  }
  // Shutting down: whatever is left ends now.
  {
    std::lock_guard lock(mutex_);
    for (auto& seq : incoming_) waiting.push_back(std::move(seq));
    incoming_.clear();
  }
  for (auto& seq : waiting) {
    seq->decoder->cancel();
    finish(*seq);
  }
  waiting_count_ = 0;
  while (!running_.empty()) {
    running_.front()->decoder->cancel();
    finish(*running_.front());
  }
}

void BatchGenerator::assign(std::deque<std::shared_ptr<Sequence>>& waiting) {
  while (!waiting.empty()) {
    Sequence& seq = *waiting.front();
    std::vector<SlotView> views;
    {
      std::lock_guard lock(mutex_);
      for (const auto& sl : slots_) views.push_back(SlotView{sl.tokens, sl.owner != nullptr, sl.last_used});
    }
    const SlotChoice c = choose_prefix_slot(views, seq.prompt.tokens);
    if (c.slot < 0) return;  // every slot is busy: first come, first served
    try {
      std::lock_guard lock(mutex_);
      Slot& sl = slots_[size_t(c.slot)];
      if (c.copy_from >= 0) {
        lm_.copy_prefix(c.copy_from, c.slot, c.reuse);
        sl.tokens.assign(slots_[size_t(c.copy_from)].tokens.begin(),
                         slots_[size_t(c.copy_from)].tokens.begin() + c.reuse);
      } else {
        lm_.truncate(c.slot, c.reuse);
        sl.tokens.resize(size_t(c.reuse));
      }
      sl.owner = &seq;
      count_kv_locked();
    } catch (...) {  // the model refused the cache operation: this request fails, not the server
      seq.error = std::current_exception();
      {
        std::lock_guard lock(mutex_);
        slots_[size_t(c.slot)].tokens.clear();  // what the slot holds is not known: empty it
        try {
          lm_.truncate(c.slot, 0);
        } catch (...) {
        }
        count_kv_locked();
      }
      seq.decoder->cancel();
      finish(seq);
      waiting.pop_front();
      --waiting_count_;
      continue;
    }
    seq.slot = c.slot;
    seq.fed = size_t(c.reuse);
    seq.started_at = Clock::now();
    GenerationOutcome& out = seq.decoder->outcome();
    out.started_at = seq.started_at;
    out.prefilled = true;
    out.reused_tokens = c.reuse;
    ++prefills_;
    prefilled_tokens_ += seq.prompt.tokens.size() - size_t(c.reuse);
    reused_tokens_ += uint64_t(c.reuse);
    running_.push_back(std::move(waiting.front()));
    waiting.pop_front();
    --waiting_count_;
    running_count_ = int(running_.size());
  }
}

void BatchGenerator::step() {
  std::vector<SequenceChunk> chunks;
  std::vector<Sequence*> owners;
  // Decode tokens first: one per decoding sequence.
  for (auto& p : running_) {
    if (!p->next) continue;
    chunks.push_back(SequenceChunk{p->slot, std::span<const int32_t>(&*p->next, 1)});
    owners.push_back(p.get());
  }
  // Then prompt chunks in admission order, within the budget (at least one token each step).
  int64_t budget = std::max<int64_t>(batch_.batch_tokens - int64_t(chunks.size()), 1);
  for (auto& p : running_) {
    if (p->next || budget <= 0) continue;
    const auto& prompt = p->prompt.tokens;
    const size_t n = std::min<size_t>(prompt.size() - p->fed, size_t(budget));
    chunks.push_back(SequenceChunk{p->slot, std::span<const int32_t>(prompt).subspan(p->fed, n)});
    owners.push_back(p.get());
    budget -= int64_t(n);
  }
  if (chunks.empty()) return;
  std::vector<float> logits;
  try {
    lm_.forward(chunks, logits);
    if (logits.size() != chunks.size() * size_t(lm_.n_vocab()))
      fail("the batched model returned ", logits.size(), " logits for ", chunks.size(), " chunks");
  } catch (...) {
    fail_running(std::current_exception());
    return;
  }
  ++steps_;
  max_in_step_ = std::max(max_in_step_.load(), int(chunks.size()));
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < chunks.size(); ++i) {
      auto& tokens = slots_[size_t(chunks[i].slot)].tokens;
      tokens.insert(tokens.end(), chunks[i].tokens.begin(), chunks[i].tokens.end());
    }
    count_kv_locked();
  }
  const size_t nv = size_t(lm_.n_vocab());
  for (size_t i = 0; i < chunks.size(); ++i) {
    Sequence& seq = *owners[i];
    if (!seq.next) {
      seq.fed += chunks[i].tokens.size();
      if (seq.fed < seq.prompt.tokens.size()) continue;  // more of the prompt next step
    }
    const int64_t n_cached = int64_t(slots_[size_t(seq.slot)].tokens.size());
    try {
      seq.next = seq.decoder->step(std::span<const float>(logits).subspan(i * nv, nv), n_cached);
    } catch (...) {  // a sampling or grammar error ends this sequence only
      seq.error = std::current_exception();
      seq.decoder->cancel();
      seq.next.reset();
    }
    if (!seq.next) finish(seq);
  }
}

void BatchGenerator::finish(Sequence& seq) {
  GenerationOutcome& out = seq.decoder->outcome();
  if (out.prefilled) {
    out.seconds = std::chrono::duration<double>(Clock::now() - seq.started_at).count();
    remember(seq.prompt, seq.decoder->produced());
  } else {
    out.started_at = Clock::now();  // never had a slot
  }
  if (seq.slot >= 0) {
    std::lock_guard lock(mutex_);
    Slot& sl = slots_[size_t(seq.slot)];
    sl.owner = nullptr;
    sl.last_used = ++clock_;
  }
  std::shared_ptr<Sequence> keep;  // seq lives until this function is done with it
  for (auto it = running_.begin(); it != running_.end(); ++it)
    if (it->get() == &seq) {
      keep = *it;
      running_.erase(it);
      break;
    }
  running_count_ = int(running_.size());
  {
    std::lock_guard lock(seq.m);
    seq.finished = true;
  }
  seq.cv.notify_all();
}

void BatchGenerator::count_kv_locked() {
  int64_t kv = 0;
  for (const auto& sl : slots_) kv += int64_t(sl.tokens.size());
  kv_tokens_ = kv;
}

void BatchGenerator::fail_running(std::exception_ptr error) {
  // The caches may hold partial chunks: empty the running sequences' slots, drop the history.
  history_.clear();
  while (!running_.empty()) {
    Sequence& seq = *running_.front();
    {
      std::lock_guard lock(mutex_);
      lm_.truncate(seq.slot, 0);
      slots_[size_t(seq.slot)].tokens.clear();
      count_kv_locked();
    }
    seq.error = error;
    seq.decoder->cancel();
    finish(seq);
  }
}

}  // namespace tandem::server
