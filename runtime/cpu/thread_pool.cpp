#include "runtime/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>

#include "experts/worker_pool.h"
#include "runtime/core/error.h"

namespace tandem::cpu {

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1) fail("cpu thread pool: needs at least one thread, got ", n_threads);
  // The caller is one of the n threads: it works instead of spinning in wait() while the
  // workers run (on a machine with as many cores as threads a spinning caller takes a core
  // that a worker needs).
  if (n_threads > 1) workers_ = std::make_unique<experts::WorkerPool>(std::vector<int>{}, n_threads - 1);
}

ThreadPool::~ThreadPool() = default;

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (!workers_ || chunks == 1) {  // not worth waking anyone
    fn(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&](int) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < chunks;
         c = next.fetch_add(1, std::memory_order_relaxed))
      fn(c * grain, std::min(n, (c + 1) * grain));
  };
  workers_->start(work);
  work(-1);
  workers_->wait();
}

}  // namespace tandem::cpu
