// A BatchedLm for the scheduler tests: no weights. Each slot keeps its token history, and the
// logits after a chunk peak at a token that is a function of the slot's whole history, so a
// sequence's greedy reply depends only on its own tokens (batching must not change it). It
// records every forward's chunk set and every copy_prefix / truncate, and a gate can hold a
// forward until the test lets it go.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "runtime/model/batched_lm.h"

namespace tandem::server::testing {

class FakeBatchedLm : public BatchedLm {
 public:
  struct Chunk {
    int slot;
    std::vector<int32_t> tokens;
  };
  struct Copy {
    int src, dst;
    int64_t n;
  };

  // first_token..first_token+span-1: the tokens the logits may peak at (printable bytes in the
  // generated vocabulary, never a stop token).
  FakeBatchedLm(int slots, int64_t max_context, int64_t n_vocab, int32_t first_token = 36, int32_t span = 50)
      : slots_(size_t(slots)), max_context_(max_context), n_vocab_(n_vocab), first_(first_token), span_(span) {}

  int64_t n_vocab() const override { return n_vocab_; }
  int slots() const override { return int(slots_.size()); }
  int64_t max_context() const override { return max_context_; }
  int64_t n_past(int slot) const override {
    std::lock_guard lock(mutex_);
    return int64_t(at(slot).size());
  }
  void truncate(int slot, int64_t n) override {
    std::lock_guard lock(mutex_);
    auto& t = at(slot);
    if (n < 0 || n > int64_t(t.size())) throw std::invalid_argument("truncate past n_past");
    t.resize(size_t(n));
    truncates_.emplace_back(slot, n);
  }
  void copy_prefix(int src, int dst, int64_t n) override {
    std::lock_guard lock(mutex_);
    if (src == dst || n < 0 || n > int64_t(at(src).size())) throw std::invalid_argument("bad copy_prefix");
    at(dst).assign(at(src).begin(), at(src).begin() + n);
    copies_.push_back(Copy{src, dst, n});
  }
  void forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) override {
    std::unique_lock lock(mutex_);
    ++forwards_started_;
    changed_.notify_all();
    const size_t index = forwards_started_;
    changed_.wait(lock, [&] { return index <= limit_; });
    if (fail_next_) {
      fail_next_ = false;
      throw std::runtime_error("fake model failure");
    }
    std::vector<Chunk> step;
    std::vector<bool> seen(slots_.size(), false);
    for (const auto& c : chunks) {
      auto& t = at(c.slot);
      if (c.tokens.empty() || seen[size_t(c.slot)] || int64_t(t.size() + c.tokens.size()) > max_context_)
        throw std::invalid_argument("bad chunk");
      seen[size_t(c.slot)] = true;
      step.push_back(Chunk{c.slot, {c.tokens.begin(), c.tokens.end()}});
    }
    last_logits.assign(chunks.size() * size_t(n_vocab_), 0.0f);
    for (size_t i = 0; i < chunks.size(); ++i) {
      auto& t = at(chunks[i].slot);
      t.insert(t.end(), chunks[i].tokens.begin(), chunks[i].tokens.end());
      uint64_t h = 1469598103934665603ull;
      for (int32_t id : t) h = (h ^ uint64_t(id)) * 1099511628211ull;
      last_logits[i * size_t(n_vocab_) + size_t(first_ + int32_t(h % uint64_t(span_)))] = 10.0f;
    }
    steps_.push_back(std::move(step));
    changed_.notify_all();
  }

  // The next forward throws (a model error).
  void fail_next() {
    std::lock_guard lock(mutex_);
    fail_next_ = true;
  }
  // Forwards wait while held (on: from the next one on).
  void hold(bool on) {
    std::lock_guard lock(mutex_);
    limit_ = on ? forwards_started_ : SIZE_MAX;
    changed_.notify_all();
  }
  // Forwards up to the n-th (counted from the first) run, later ones wait.
  void allow(size_t n) {
    std::lock_guard lock(mutex_);
    limit_ = n;
    changed_.notify_all();
  }
  // Waits (bounded) until at least n forwards have started; false on time-out.
  bool wait_forwards(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(20), [&] { return forwards_started_ >= n; });
  }
  std::vector<std::vector<Chunk>> steps() const {
    std::lock_guard lock(mutex_);
    return steps_;
  }
  std::vector<Copy> copies() const {
    std::lock_guard lock(mutex_);
    return copies_;
  }
  std::vector<std::pair<int, int64_t>> truncates() const {
    std::lock_guard lock(mutex_);
    return truncates_;
  }
  std::vector<int32_t> tokens(int slot) const {
    std::lock_guard lock(mutex_);
    return at(slot);
  }

 private:
  std::vector<int32_t>& at(int slot) {
    if (slot < 0 || slot >= int(slots_.size())) throw std::invalid_argument("bad slot");
    return slots_[size_t(slot)];
  }
  const std::vector<int32_t>& at(int slot) const { return const_cast<FakeBatchedLm*>(this)->at(slot); }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<int32_t>> slots_;
  int64_t max_context_, n_vocab_;
  int32_t first_, span_;
  size_t limit_ = SIZE_MAX;  // forwards past this many wait
  bool fail_next_ = false;
  size_t forwards_started_ = 0;
  std::vector<std::vector<Chunk>> steps_;
  std::vector<Copy> copies_;
  std::vector<std::pair<int, int64_t>> truncates_;
};

}  // namespace tandem::server::testing
