#include "runtime/gpu/gpu_buffer.h"

#include <utility>

#include "runtime/core/error.h"

namespace tandem::gpu {

GpuSpan GpuSpan::sub(uint64_t off, uint64_t bytes) const {
  if (off > size || bytes > size - off)
    fail("GPU buffer range [", off, ", ", off + bytes, ") outside a span of ", size, " bytes");
  return {buffer, offset + off, bytes};
}

GpuBuffer& GpuBuffer::operator=(GpuBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = std::exchange(o.pool_, nullptr);
    block_ = o.block_;
    offset_ = o.offset_;
    size_ = std::exchange(o.size_, 0);
    reserved_ = o.reserved_;
    buffer_ = std::exchange(o.buffer_, VK_NULL_HANDLE);
    mapped_ = std::exchange(o.mapped_, nullptr);
  }
  return *this;
}

void GpuBuffer::reset() {
  if (pool_) pool_->release(block_, offset_, reserved_);
  pool_ = nullptr;
  buffer_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
  size_ = 0;
}

namespace {

uint32_t pick_memory_type(const VkPhysicalDeviceMemoryProperties& props, MemoryKind kind) {
  const VkMemoryPropertyFlags want = kind == MemoryKind::DeviceLocal
                                         ? VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
                                         : VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  // Host-visible: prefer cached memory (downloads read it back), then anything coherent.
  const VkMemoryPropertyFlags nice = kind == MemoryKind::HostVisible ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT : 0;
  uint32_t found = UINT32_MAX;
  for (uint32_t i = 0; i < props.memoryTypeCount; ++i) {
    const auto f = props.memoryTypes[i].propertyFlags;
    if ((f & want) != want) continue;
    if (found == UINT32_MAX) found = i;
    if ((f & nice) == nice) return i;
  }
  return found;
}

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

GpuMemoryPool::GpuMemoryPool(VkDevice device, const VkPhysicalDeviceMemoryProperties& props, MemoryKind kind,
                             uint64_t block_bytes, uint64_t alignment, uint64_t max_allocation_bytes)
    : device_(device), kind_(kind), block_bytes_(block_bytes), alignment_(alignment),
      max_allocation_(max_allocation_bytes) {
  memory_type_ = pick_memory_type(props, kind);
  if (memory_type_ == UINT32_MAX)
    fail("GPU has no ", kind == MemoryKind::DeviceLocal ? "device-local" : "host-visible coherent", " memory type");
}

GpuMemoryPool::~GpuMemoryPool() {
  for (auto& b : blocks_) {
    if (b.buffer) vk().vkDestroyBuffer(device_, b.buffer, nullptr);
    if (b.mapped) vk().vkUnmapMemory(device_, b.memory);
    if (b.memory) vk().vkFreeMemory(device_, b.memory, nullptr);
  }
}

uint32_t GpuMemoryPool::add_block(uint64_t bytes, const char* what) {
  if (max_allocation_ && bytes > max_allocation_)
    fail("GPU buffer for ", what, ": ", bytes, " bytes exceed the device's maxMemoryAllocationSize of ",
         max_allocation_);
  Block b;
  b.size = bytes;
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = bytes;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkResult r = vk().vkCreateBuffer(device_, &bci, nullptr, &b.buffer);
  if (r != VK_SUCCESS) fail("GPU buffer for ", what, " (", bytes, " bytes): vkCreateBuffer: ", vk_result_name(r));
  VkMemoryRequirements req{};
  vk().vkGetBufferMemoryRequirements(device_, b.buffer, &req);
  VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  mai.allocationSize = req.size;
  mai.memoryTypeIndex = memory_type_;
  if (!(req.memoryTypeBits & (1u << memory_type_))) {
    vk().vkDestroyBuffer(device_, b.buffer, nullptr);
    fail("GPU buffer for ", what, ": the chosen memory type does not accept storage buffers");
  }
  r = vk().vkAllocateMemory(device_, &mai, nullptr, &b.memory);
  if (r != VK_SUCCESS) {
    vk().vkDestroyBuffer(device_, b.buffer, nullptr);
    fail("GPU memory for ", what, " (", bytes / (1024 * 1024), " MiB, ", bytes_in_use(),
         " bytes already in use): ", vk_result_name(r));
  }
  check_vk(vk().vkBindBufferMemory(device_, b.buffer, b.memory, 0), "vkBindBufferMemory");
  if (kind_ == MemoryKind::HostVisible) {
    void* p = nullptr;
    check_vk(vk().vkMapMemory(device_, b.memory, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    b.mapped = static_cast<uint8_t*>(p);
  }
  b.free.emplace(0, bytes);
  blocks_.push_back(std::move(b));
  return uint32_t(blocks_.size() - 1);
}

GpuBuffer GpuMemoryPool::allocate(uint64_t bytes, const char* what) {
  const uint64_t need = round_up(std::max<uint64_t>(bytes, 1), alignment_);
  std::lock_guard lock(mu_);
  auto take = [&](uint32_t bi) -> GpuBuffer {
    auto& blk = blocks_[bi];
    for (auto it = blk.free.begin(); it != blk.free.end(); ++it) {
      if (it->second < need) continue;
      const uint64_t off = it->first, left = it->second - need;
      blk.free.erase(it);
      if (left) blk.free.emplace(off + need, left);
      GpuBuffer out;
      out.pool_ = this;
      out.block_ = bi;
      out.offset_ = off;
      out.size_ = bytes;
      out.reserved_ = need;
      out.buffer_ = blk.buffer;
      out.mapped_ = blk.mapped ? blk.mapped + off : nullptr;
      in_use_ += need;
      return out;
    }
    return GpuBuffer();
  };
  for (uint32_t bi = 0; bi < blocks_.size(); ++bi)
    if (auto b = take(bi)) return b;
  // Large tensors get a block of their own; small ones share fixed-size blocks.
  const uint32_t bi = add_block(std::max(need, block_bytes_), what);
  return take(bi);
}

void GpuMemoryPool::release(uint32_t block, uint64_t offset, uint64_t size) {
  std::lock_guard lock(mu_);
  auto& f = blocks_[block].free;
  in_use_ -= size;
  auto it = f.emplace(offset, size).first;
  auto next = std::next(it);
  if (next != f.end() && it->first + it->second == next->first) {
    it->second += next->second;
    f.erase(next);
  }
  if (it != f.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      f.erase(it);
    }
  }
}

uint64_t GpuMemoryPool::bytes_in_use() const { return in_use_; }

uint64_t GpuMemoryPool::bytes_reserved() const {
  std::lock_guard lock(mu_);
  uint64_t t = 0;
  for (const auto& b : blocks_) t += b.size;
  return t;
}

}  // namespace tandem::gpu
