// DRAM read bandwidth as the expert engine sees it: threads pinned to the cores of one NUMA node
// streaming a buffer placed on another (or the same) node. Used by `tandem bench numa` and to
// express expert throughput as a fraction of what the memory can give.
#pragma once

#include <cstdint>
#include <vector>

#include "experts/cpu_topology.h"

namespace tandem::experts {

struct BandwidthSample {
  int cpu_node = 0;     // OS index of the node whose cores read
  int memory_node = 0;  // OS index of the node holding the buffer
  int threads = 0;
  double gb_per_s = 0;  // 1e9 bytes per second
};

// Reads `bytes` (split among `threads` workers pinned to cpu_node's PUs) `passes` times after a
// warm-up pass; returns the best pass.
BandwidthSample measure_read_bandwidth(const NumaNodeCpus& cpu_node, int memory_node, int threads, size_t bytes,
                                       int passes);

// Every listed node's first `threads_per_node` PUs reading at once (`bytes` per node): each from
// a buffer bound to its own node (interleaved false), or all from one buffer interleaved page by
// page over the nodes (true; unbound where libnuma is missing). GB/s of all readers together.
double measure_aggregate_bandwidth(const std::vector<NumaNodeCpus>& nodes, int threads_per_node, size_t bytes, int passes,
                                   bool interleaved);

}  // namespace tandem::experts
