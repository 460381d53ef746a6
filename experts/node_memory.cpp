#include "experts/node_memory.h"

#include <numa.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace tandem::experts {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

bool numa_placement_available() {
  static const bool available = numa_available() >= 0;
  return available;
}

NodeMemory::NodeMemory(size_t bytes, int numa_node) : size_(bytes) {
  if (bytes == 0) return;
  mapped_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Over-map by one huge page and trim, so the range starts on a 2 MB boundary.
  void* raw = mmap(nullptr, mapped_ + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    fail("expert weights: cannot map ", bytes, " bytes for NUMA node ", numa_node, ": ", std::strerror(errno));
  const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) / kHugePage * kHugePage;
  const size_t head = start - reinterpret_cast<uintptr_t>(raw);
  if (head) munmap(raw, head);
  if (kHugePage - head) munmap(reinterpret_cast<uint8_t*>(start) + mapped_, kHugePage - head);
  void* p = reinterpret_cast<void*>(start);
  data_ = static_cast<uint8_t*>(p);
  madvise(p, mapped_, MADV_HUGEPAGE);  // best effort: THP may be off
  if (numa_placement_available() && numa_node >= 0 && numa_node <= numa_max_node()) {
    numa_tonode_memory(p, mapped_, numa_node);  // before the first touch places the pages
    numa_ = true;
  }
}

NodeMemory::~NodeMemory() {
  if (data_) munmap(data_, mapped_);
}

}  // namespace tandem::experts
