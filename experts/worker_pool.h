// A fixed set of worker threads, optionally pinned one per CPU, that run one SPMD job at a time:
// every worker calls job(thread_index) and may meet the others at barrier(). The caller's thread
// only starts the job and waits, so pools of several NUMA nodes can run side by side.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace tandem::experts {

class WorkerPool {
 public:
  // cpus: OS indices of the PUs to pin worker i to (cpus[i]); empty: n_threads unpinned workers.
  WorkerPool(std::vector<int> cpus, int n_threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return int(threads_.size()); }
  void start(std::function<void(int thread)> job);  // returns at once
  void wait();                                       // until every worker has returned from job
  void run(std::function<void(int thread)> job) { start(std::move(job)), wait(); }
  // Inside a job: returns once every worker of this pool has called it.
  void barrier();

 private:
  void worker_main(int index, int cpu);

  std::vector<std::thread> threads_;
  std::function<void(int)> job_;
  std::atomic<uint32_t> generation_{0};  // bumped to start a job (and to stop: stop_ set first)
  std::atomic<int> finished_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> barrier_count_{0};
  std::atomic<uint32_t> barrier_generation_{0};
};

}  // namespace tandem::experts
