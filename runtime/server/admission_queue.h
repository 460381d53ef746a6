// The bounded, first-come-first-served line in front of the generator. A request takes a
// ticket (refused when the line is full: the server answers 503), waits for its turn (up to
// max_running run at once: tandem serve --parallel), runs, and finishes. A waiter whose client left gives up its place before any prefill work is done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

namespace tandem::server {

class AdmissionQueue {
 public:
  // max_waiting: tickets that may wait while max_running run (0: only the running ones).
  explicit AdmissionQueue(size_t max_waiting, size_t max_running = 1)
      : max_waiting_(max_waiting), max_running_(max_running < 1 ? 1 : max_running) {}

  // A ticket, or nullopt when the line is full or closed.
  std::optional<uint64_t> admit();
  // Blocks until the ticket is first in line and fewer than max_running run; then it runs (true). Returns
  // false, the ticket gone from the line, once should_leave() (polled every `poll`) says so or
  // the queue closed.
  bool wait_turn(uint64_t ticket, const std::function<bool()>& should_leave, std::chrono::milliseconds poll);
  // A ticket that ran (or never waited, after admit) is done.
  void finish(uint64_t ticket);
  // No more admissions; waiters leave with false. The running one goes on.
  void close();

  size_t waiting() const;  // admitted, not yet running
  size_t running() const;  // 0 ... max_running

 private:
  void remove_locked(uint64_t ticket);

  const size_t max_waiting_;
  const size_t max_running_;
  mutable std::mutex mutex_;
  std::condition_variable turn_;
  std::deque<uint64_t> line_;
  std::vector<uint64_t> running_;
  uint64_t next_ticket_ = 1;
  bool closed_ = false;
};

}  // namespace tandem::server
