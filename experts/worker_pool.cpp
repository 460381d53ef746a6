#include "experts/worker_pool.h"

#include <pthread.h>
#include <sched.h>

#include "runtime/core/error.h"

namespace tandem::experts {
namespace {

// Short spin before sleeping on the futex: decode jobs are a few hundred microseconds apart, and
// a wake-up costs more than that spin; a longer spin would steal cores from other processes.
constexpr int kSpinIterations = 2000;

template <typename T>
void spin_then_wait(const std::atomic<T>& value, T old) {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (value.load(std::memory_order_acquire) != old) return;
    __builtin_ia32_pause();
  }
  while (value.load(std::memory_order_acquire) == old) value.wait(old, std::memory_order_acquire);
}

}  // namespace

WorkerPool::WorkerPool(std::vector<int> cpus, int n_threads) {
  if (!cpus.empty()) n_threads = int(cpus.size());
  if (n_threads < 1) fail("worker pool: needs at least one thread, got ", n_threads);
  threads_.reserve(size_t(n_threads));
  for (int i = 0; i < n_threads; ++i)
    threads_.emplace_back(&WorkerPool::worker_main, this, i, cpus.empty() ? -1 : cpus[size_t(i)]);
}

WorkerPool::~WorkerPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::start(std::function<void(int)> job) {
  job_ = std::move(job);
  finished_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
}

void WorkerPool::wait() {
  const int n = size();
  for (int done = finished_.load(std::memory_order_acquire); done != n;
       done = finished_.load(std::memory_order_acquire))
    spin_then_wait(finished_, done);
}

void WorkerPool::barrier() {
  const uint32_t gen = barrier_generation_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == size()) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_generation_.fetch_add(1, std::memory_order_acq_rel);
    barrier_generation_.notify_all();
    return;
  }
  spin_then_wait(barrier_generation_, gen);
}

void WorkerPool::worker_main(int index, int cpu) {
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort: cgroups may refuse
  }
  uint32_t seen = 0;
  for (;;) {
    spin_then_wait(generation_, seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    job_(index);
    if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == size()) finished_.notify_all();
  }
}

}  // namespace tandem::experts
