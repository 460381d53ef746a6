#include "experts/worker_pool.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"

namespace tandem::experts {
namespace {

// Spin before sleeping on the futex: a fixed 2000 pauses by default. TANDEM_POOL_SPIN_US=N spins
// N microseconds instead (measured on the device, V2-Lite decode shape, 16 threads: 1000 us made
// a forward 5x slower, 2.5 vs 0.45 ms, with the last worker starting 1 ms late: the caller spinning
// in wait() holds a core that a pinned worker needs. Kept as a knob for a fix that keeps the
// caller off the workers' cores).
constexpr int64_t kDefaultSpinUs = 0;
constexpr int kLegacySpinIterations = 2000;

int64_t spin_ns() {
  static const int64_t ns = [] {
    return knobs::integer("TANDEM_POOL_SPIN_US", 0, 1000000, kDefaultSpinUs) * 1000;
  }();
  return ns;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename T>
void spin_then_wait(const std::atomic<T>& value, T old) {
  const int64_t limit = spin_ns();
  if (limit <= 0) {
    for (int i = 0; i < kLegacySpinIterations; ++i) {
      if (value.load(std::memory_order_acquire) != old) return;
      __builtin_ia32_pause();
    }
  } else {
    const int64_t until = now_ns() + limit;
    for (;;) {
      for (int i = 0; i < 32; ++i) {  // the clock is read once per 32 pauses
        if (value.load(std::memory_order_acquire) != old) return;
        __builtin_ia32_pause();
      }
      if (now_ns() > until) break;
    }
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
