#include "experts/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "experts/node_memory.h"
#include "experts/worker_pool.h"
#include "runtime/core/error.h"

namespace tandem::experts {
namespace {

// Four independent 64-bit accumulators keep enough loads in flight to saturate one core's share.
uint64_t read_sum(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a += p[i] ^ p[i + 4];
    b += p[i + 1] ^ p[i + 5];
    c += p[i + 2] ^ p[i + 6];
    d += p[i + 3] ^ p[i + 7];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

}  // namespace

BandwidthSample measure_read_bandwidth(const NumaNodeCpus& cpu_node, int memory_node, int threads, size_t bytes,
                                       int passes) {
  if (threads < 1 || size_t(threads) > cpu_node.pus.size())
    fail("bandwidth: ", threads, " threads on NUMA node ", cpu_node.node, " which has ", cpu_node.pus.size(), " PUs");
  NodeMemory buffer(bytes, memory_node);
  std::memset(buffer.data(), 1, bytes);  // fault pages in on their node
  WorkerPool pool(std::vector<int>(cpu_node.pus.begin(), cpu_node.pus.begin() + threads), threads);
  const size_t words = bytes / 8, per_thread = words / size_t(threads);
  std::vector<uint64_t> sink(size_t(threads) * 8);
  const auto* data = reinterpret_cast<const uint64_t*>(buffer.data());
  double best = 0;
  for (int pass = -1; pass < passes; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t) { sink[size_t(t) * 8] += read_sum(data + size_t(t) * per_thread, per_thread); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (pass >= 0) best = std::max(best, double(per_thread * size_t(threads) * 8) / s / 1e9);
  }
  return {cpu_node.node, memory_node, threads, best};
}

}  // namespace tandem::experts
