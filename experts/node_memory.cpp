#include "experts/node_memory.h"

#include <numa.h>

#include <cstdlib>

#include "runtime/core/error.h"

namespace tandem::experts {

bool numa_placement_available() {
  static const bool available = numa_available() >= 0;
  return available;
}

NodeMemory::NodeMemory(size_t bytes, int numa_node) : size_(bytes) {
  if (bytes == 0) return;
  if (numa_placement_available() && numa_node >= 0 && numa_node <= numa_max_node()) {
    data_ = static_cast<uint8_t*>(numa_alloc_onnode(bytes, numa_node));
    numa_ = data_ != nullptr;
  }
  if (!data_) data_ = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!data_) fail("expert weights: cannot allocate ", bytes, " bytes on NUMA node ", numa_node);
}

NodeMemory::~NodeMemory() {
  if (!data_) return;
  if (numa_) numa_free(data_, size_);
  else std::free(data_);
}

}  // namespace tandem::experts
