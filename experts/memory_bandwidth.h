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

}  // namespace tandem::experts
