#include "runtime/server/admission_queue.h"

#include <algorithm>

namespace tandem::server {

std::optional<uint64_t> AdmissionQueue::admit() {
  std::lock_guard lock(mutex_);
  if (closed_ || line_.size() + running_.size() >= max_waiting_ + max_running_) return std::nullopt;
  const uint64_t t = next_ticket_++;
  line_.push_back(t);
  return t;
}

bool AdmissionQueue::wait_turn(uint64_t ticket, const std::function<bool()>& should_leave,
                               std::chrono::milliseconds poll) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (closed_ || (should_leave && should_leave())) {
      remove_locked(ticket);
      return false;
    }
    if (running_.size() < max_running_ && !line_.empty() && line_.front() == ticket) {
      line_.pop_front();
      running_.push_back(ticket);
      return true;
    }
    turn_.wait_for(lock, poll);
  }
}

void AdmissionQueue::finish(uint64_t ticket) {
  std::lock_guard lock(mutex_);
  std::erase(running_, ticket);
  remove_locked(ticket);
}

void AdmissionQueue::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  turn_.notify_all();
}

size_t AdmissionQueue::waiting() const {
  std::lock_guard lock(mutex_);
  return line_.size();
}

size_t AdmissionQueue::running() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

void AdmissionQueue::remove_locked(uint64_t ticket) {
  line_.erase(std::remove(line_.begin(), line_.end(), ticket), line_.end());
  turn_.notify_all();
}

}  // namespace tandem::server
