#include "experts/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include <numa.h>

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

double measure_aggregate_bandwidth(const std::vector<NumaNodeCpus>& nodes, int threads_per_node, size_t bytes, int passes,
                                   bool interleaved) {
  if (nodes.empty()) fail("bandwidth: no NUMA nodes to read with");
  std::vector<int> pus, node_of;
  for (size_t n = 0; n < nodes.size(); ++n) {
    const int t = std::min<int>(threads_per_node > 0 ? threads_per_node : int(nodes[n].pus.size()), int(nodes[n].pus.size()));
    for (int i = 0; i < t; ++i) pus.push_back(nodes[n].pus[size_t(i)]), node_of.push_back(int(n));
  }
  if (pus.empty()) fail("bandwidth: the NUMA nodes have no PUs");
  std::vector<std::unique_ptr<NodeMemory>> buffers;
  if (interleaved) {
    buffers.push_back(std::make_unique<NodeMemory>(bytes * nodes.size(), -1));
    if (numa_placement_available()) numa_interleave_memory(buffers[0]->data(), buffers[0]->size(), numa_all_nodes_ptr);
  } else {
    for (const NumaNodeCpus& n : nodes) buffers.push_back(std::make_unique<NodeMemory>(bytes, n.node));
  }
  for (auto& b : buffers) std::memset(b->data(), 1, b->size());
  WorkerPool pool(pus, int(pus.size()));
  // Thread i reads its slice: of its node's buffer (bound), or of the one big buffer (interleaved).
  std::vector<int> rank_in_node(pus.size()), per_node(nodes.size(), 0);
  for (size_t i = 0; i < pus.size(); ++i) rank_in_node[i] = per_node[size_t(node_of[i])]++;
  std::vector<uint64_t> sink(pus.size() * 8);
  size_t total_words = 0;
  double best = 0;
  for (int pass = -1; pass < passes; ++pass) {
    std::vector<size_t> words(pus.size());
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int t) {
      const size_t i = size_t(t);
      const uint64_t* p;
      size_t n;
      if (interleaved) {
        n = buffers[0]->size() / 8 / pus.size();
        p = reinterpret_cast<const uint64_t*>(buffers[0]->data()) + i * n;
      } else {
        const size_t node = size_t(node_of[i]);
        n = bytes / 8 / size_t(per_node[node]);
        p = reinterpret_cast<const uint64_t*>(buffers[node]->data()) + size_t(rank_in_node[i]) * n;
      }
      sink[i * 8] += read_sum(p, n);
      words[i] = n;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_words = 0;
    for (size_t w : words) total_words += w;
    if (pass >= 0) best = std::max(best, double(total_words * 8) / s / 1e9);
  }
  return best;
}

}  // namespace tandem::experts
