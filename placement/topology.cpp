#include "placement/topology.h"

#include <hwloc.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "runtime/core/error.h"

namespace tandem::placement {

namespace {

Topology from_loaded(hwloc_topology_t topo) {
  Topology t;
  const int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, unsigned(i));
    NumaNode nn;
    nn.index = int(node->logical_index);
    nn.memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
    nn.cores = node->cpuset ? hwloc_get_nbobjs_inside_cpuset_by_type(topo, node->cpuset, HWLOC_OBJ_CORE) : 0;
    t.nodes.push_back(nn);
  }
  if (t.nodes.empty()) {  // hwloc always reports one node, but stay safe
    NumaNode nn;
    nn.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    t.nodes.push_back(nn);
  }
  return t;
}

struct HwlocTopology {
  hwloc_topology_t topo = nullptr;
  HwlocTopology() {
    if (hwloc_topology_init(&topo) != 0) fail("hwloc: cannot initialise a topology");
  }
  ~HwlocTopology() { hwloc_topology_destroy(topo); }
  HwlocTopology(const HwlocTopology&) = delete;
  HwlocTopology& operator=(const HwlocTopology&) = delete;
};

}  // namespace

Topology Topology::detect_cpu() {
  HwlocTopology h;
  if (hwloc_topology_load(h.topo) != 0) fail("hwloc: cannot load this machine's topology");
  Topology t = from_loaded(h.topo);
  // Some sandboxes report a node's memory far below the machine's (a stale sysfs node); with
  // one node, the kernel's total is the truth.
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (t.nodes.size() == 1 && pages > 0 && page > 0)
    t.nodes[0].memory_bytes = std::max<uint64_t>(t.nodes[0].memory_bytes, uint64_t(pages) * uint64_t(page));
  return t;
}

Topology Topology::from_hwloc_synthetic(const std::string& description) {
  HwlocTopology h;
  if (hwloc_topology_set_synthetic(h.topo, description.c_str()) != 0)
    fail("bad synthetic topology \"", description, "\" (hwloc syntax, e.g. \"pack:2 numa:1(memory=64GB) core:4 pu:1\")");
  if (hwloc_topology_load(h.topo) != 0) fail("hwloc: cannot load synthetic topology \"", description, "\"");
  return from_loaded(h.topo);
}

void Topology::add_gpu(std::string name, uint64_t device_local_bytes) {
  gpus.push_back({int(gpus.size()), std::move(name), device_local_bytes, false});
}

uint64_t Topology::host_memory_bytes() const {
  uint64_t sum = 0;
  for (const NumaNode& n : nodes) sum += n.memory_bytes;
  return sum;
}

int Topology::total_cores() const {
  int sum = 0;
  for (const NumaNode& n : nodes) sum += n.cores;
  return sum;
}

uint64_t parse_byte_size(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || p == text.data()) fail("bad size \"", text, "\" (e.g. 24GiB, 512MiB, 80GB)");
  const std::string unit(p, end);
  uint64_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KiB") scale = 1ull << 10;
  else if (unit == "MiB") scale = 1ull << 20;
  else if (unit == "GiB") scale = 1ull << 30;
  else if (unit == "TiB") scale = 1ull << 40;
  else if (unit == "KB") scale = 1000ull;
  else if (unit == "MB") scale = 1000ull * 1000;
  else if (unit == "GB") scale = 1000ull * 1000 * 1000;
  else if (unit == "TB") scale = 1000ull * 1000 * 1000 * 1000;
  else fail("bad size unit \"", unit, "\" in \"", text, "\" (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
  if (value > UINT64_MAX / scale) fail("size \"", text, "\" overflows");
  return value * scale;
}

}  // namespace tandem::placement
