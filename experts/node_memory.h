// Expert weights copied into the memory of one NUMA node (libnuma), so that each node's threads
// stream their experts from local DRAM. Falls back to ordinary memory where libnuma is absent.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tandem::experts {

class NodeMemory {
 public:
  NodeMemory(size_t bytes, int numa_node);  // throws Error when the allocation fails
  ~NodeMemory();
  NodeMemory(const NodeMemory&) = delete;
  NodeMemory& operator=(const NodeMemory&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool on_node() const { return numa_; }  // false: fell back to malloc

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool numa_ = false;
};

bool numa_placement_available();

}  // namespace tandem::experts
