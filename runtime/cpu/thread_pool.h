// The worker threads of the CPU forward pass (runtime/cpu): a parallel-for over an index range,
// chunks handed out through an atomic counter so uneven work balances itself. Built on the
// expert engine's WorkerPool; one job at a time (a job must not start another one).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace tandem::experts {
class WorkerPool;
}

namespace tandem::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads >= 1; 1 runs everything on the caller
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(begin, end) for consecutive chunks of at most `grain` indices covering [0, n)
  // (with one thread, the whole range in one call: nothing to balance).
  // fn must not throw (workers have nowhere to send an exception): check inputs before.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  int n_threads_;
  std::unique_ptr<experts::WorkerPool> workers_;  // null when n_threads_ == 1
};

}  // namespace tandem::cpu
