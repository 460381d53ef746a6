// Engine-owned memory for expert weights (and bandwidth probes): anonymous pages bound to one
// NUMA node with libnuma where available, and backed by transparent huge pages where the kernel
// allows (MADV_HUGEPAGE): streaming hundreds of MB through 4 KB pages costs a TLB miss per page.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::experts {

class NodeMemory {
 public:
  // numa_node < 0: no binding. Throws Error when the allocation fails.
  NodeMemory(size_t bytes, int numa_node);
  ~NodeMemory();
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool on_node() const { return numa_; }  // false: not bound (no libnuma, or node < 0)

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  bool numa_ = false;
};

bool numa_placement_available();

}  // namespace tandem::experts
