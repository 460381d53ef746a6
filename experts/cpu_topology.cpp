#include "experts/cpu_topology.h"

#include <hwloc.h>

#include <algorithm>
#include <memory>

#include "runtime/core/error.h"

namespace tandem::experts {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology_t t) const { hwloc_topology_destroy(t); }
};
using TopologyHandle = std::unique_ptr<hwloc_topology, TopologyDeleter>;

TopologyHandle load_topology(const std::string& synthetic) {
  hwloc_topology_t raw;
  if (hwloc_topology_init(&raw) != 0) fail("hwloc: cannot initialise a topology");
  TopologyHandle topo(raw);
  if (!synthetic.empty() && hwloc_topology_set_synthetic(raw, synthetic.c_str()) != 0)
    fail("hwloc synthetic topology \"", synthetic, "\": rejected by hwloc");
  if (hwloc_topology_load(raw) != 0) fail("hwloc: cannot load the topology");
  return topo;
}

}  // namespace

CpuTopology read_cpu_topology(bool use_smt, const std::string& synthetic) {
  TopologyHandle topo = load_topology(synthetic);
  hwloc_topology_t t = topo.get();
  CpuTopology out;
  out.synthetic = !synthetic.empty();
  const int n_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  const int n_cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  for (int ni = 0; ni < std::max(n_nodes, 1); ++ni) {
    hwloc_obj_t node = n_nodes > 0 ? hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, unsigned(ni)) : nullptr;
    const hwloc_const_cpuset_t node_set = node ? node->cpuset : hwloc_topology_get_topology_cpuset(t);
    NumaNodeCpus entry;
    entry.node = node ? int(node->os_index) : 0;
    std::vector<int> siblings;
    for (int ci = 0; ci < n_cores; ++ci) {
      hwloc_obj_t core = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, unsigned(ci));
      if (!core->cpuset || !hwloc_bitmap_isincluded(core->cpuset, node_set)) continue;
      bool first = true;
      for (int pu = hwloc_bitmap_first(core->cpuset); pu >= 0; pu = hwloc_bitmap_next(core->cpuset, pu)) {
        if (first) entry.pus.push_back(pu);
        else if (use_smt) siblings.push_back(pu);
        first = false;
      }
    }
    if (n_cores == 0)  // no core objects (some VMs): every PU counts as a core
      for (int pu = hwloc_bitmap_first(node_set); pu >= 0; pu = hwloc_bitmap_next(node_set, pu))
        entry.pus.push_back(pu);
    entry.pus.insert(entry.pus.end(), siblings.begin(), siblings.end());
    if (!entry.pus.empty()) out.nodes.push_back(std::move(entry));
  }
  std::sort(out.nodes.begin(), out.nodes.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  if (out.nodes.empty()) fail("hwloc topology", synthetic.empty() ? "" : " \"" + synthetic + "\"", ": no usable CPU");
  return out;
}

std::vector<NumaNodeCpus> plan_node_pools(const CpuTopology& topo, int threads_per_node, int reserved_cores) {
  if (threads_per_node < 0) fail("threads per NUMA node: ", threads_per_node, " is negative");
  if (reserved_cores < 0) fail("reserved cores: ", reserved_cores, " is negative");
  std::vector<NumaNodeCpus> plan = topo.nodes;
  if (!plan.empty() && reserved_cores > 0) {
    auto& pus = plan.front().pus;
    if (size_t(reserved_cores) >= pus.size())
      fail("reserved cores: ", reserved_cores, " leaves no core of NUMA node ", plan.front().node, " (it has ",
           pus.size(), ") for the expert threads");
    pus.erase(pus.begin(), pus.begin() + reserved_cores);
  }
  for (auto& node : plan)
    if (threads_per_node > 0 && size_t(threads_per_node) < node.pus.size()) node.pus.resize(size_t(threads_per_node));
  return plan;
}

std::vector<int> shard_experts(int64_t n_experts, int n_nodes) {
  if (n_nodes < 1) fail("expert sharding: ", n_nodes, " NUMA nodes");
  std::vector<int> owner(size_t(std::max<int64_t>(n_experts, 0)));
  for (int64_t e = 0; e < n_experts; ++e) owner[size_t(e)] = int(e * n_nodes / n_experts);
  return owner;
}

}  // namespace tandem::experts
