// The CPUs the expert engine may run on, grouped by NUMA node, read with hwloc: from this machine
// or from an hwloc synthetic description (e.g. "package:2 numa:2 core:8 pu:2") so that the
// NUMA logic can be tested on a one-node machine.
#pragma once

#include <string>
#include <vector>

namespace tandem::experts {

struct NumaNodeCpus {
  int node = 0;           // OS index of the NUMA node (what libnuma calls it)
  std::vector<int> pus;   // OS indices of the PUs to run threads on, one per core unless SMT is used
};

struct CpuTopology {
  std::vector<NumaNodeCpus> nodes;  // nodes with at least one usable PU, by OS index
  bool synthetic = false;           // true: PUs are not real CPUs of this machine (never pin)
};

// use_smt: also list the hyper-thread siblings of each core (after all first PUs of the node).
// synthetic: empty for this machine. Throws Error when hwloc rejects the description.
CpuTopology read_cpu_topology(bool use_smt = false, const std::string& synthetic = "");

// One worker-pool plan per node: the first threads_per_node PUs (0: all of them). Threads beyond
// the PUs a node has are left out: an oversubscribed pool is slower than a smaller one.
// reserved_cores: the first node's first PUs left to other threads (the GPU feeder and driver):
// a pinned worker sharing its core with a busy thread stalls every barrier of the pool.
std::vector<NumaNodeCpus> plan_node_pools(const CpuTopology& topo, int threads_per_node, int reserved_cores = 0);

// Expert e is owned by node owner[e]: contiguous, balanced ranges (sharding across n_nodes).
std::vector<int> shard_experts(int64_t n_experts, int n_nodes);

}  // namespace tandem::experts
