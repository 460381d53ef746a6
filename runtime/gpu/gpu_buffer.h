// Device memory: large VkDeviceMemory blocks, each with one VkBuffer over the whole block, carved
// into sub-allocations (GpuBuffer). A GpuSpan is a byte range of a VkBuffer: what kernels bind.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/gpu/vulkan_api.h"

namespace tandem::gpu {

enum class MemoryKind {
  DeviceLocal,  // weights, activations, KV cache
  HostVisible,  // staging and small per-step inputs the host rewrites before each replay
};

struct GpuSpan {
  VkBuffer buffer = VK_NULL_HANDLE;
  uint64_t offset = 0;
  uint64_t size = 0;

  GpuSpan sub(uint64_t off, uint64_t bytes) const;  // checked
};

class GpuMemoryPool;

// Move-only owner of one sub-allocation; returns it to its pool when destroyed.
class GpuBuffer {
 public:
  GpuBuffer() = default;
  GpuBuffer(GpuBuffer&& o) noexcept { *this = std::move(o); }
  GpuBuffer& operator=(GpuBuffer&& o) noexcept;
  GpuBuffer(const GpuBuffer&) = delete;
  GpuBuffer& operator=(const GpuBuffer&) = delete;
  ~GpuBuffer() { reset(); }

  void reset();
  explicit operator bool() const { return pool_ != nullptr; }
  uint64_t size() const { return size_; }
  GpuSpan span() const { return {buffer_, offset_, size_}; }
  GpuSpan sub(uint64_t off, uint64_t bytes) const { return span().sub(off, bytes); }
  // Host pointer to the first byte for HostVisible memory, null for DeviceLocal.
  void* mapped() const { return mapped_; }

 private:
  friend class GpuMemoryPool;
  GpuMemoryPool* pool_ = nullptr;
  uint32_t block_ = 0;
  uint64_t offset_ = 0;
  uint64_t size_ = 0;  // as requested
  uint64_t reserved_ = 0;  // rounded to the pool's alignment
  VkBuffer buffer_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
};

class GpuMemoryPool {
 public:
  GpuMemoryPool(VkDevice device, const VkPhysicalDeviceMemoryProperties& props, MemoryKind kind,
                uint64_t block_bytes, uint64_t alignment, uint64_t max_allocation_bytes);
  ~GpuMemoryPool();
  GpuMemoryPool(const GpuMemoryPool&) = delete;
  GpuMemoryPool& operator=(const GpuMemoryPool&) = delete;

  // Throws Error naming `what` when the device is out of memory or the request is too large.
  GpuBuffer allocate(uint64_t bytes, const char* what);
  uint64_t bytes_in_use() const;
  uint64_t bytes_reserved() const;  // sum of block sizes

 private:
  friend class GpuBuffer;
  struct Block {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    VkBuffer buffer = VK_NULL_HANDLE;
    uint64_t size = 0;
    uint8_t* mapped = nullptr;
    std::map<uint64_t, uint64_t> free;  // offset -> size, coalesced
  };
  void release(uint32_t block, uint64_t offset, uint64_t size);
  uint32_t add_block(uint64_t bytes, const char* what);

  VkDevice device_;
  MemoryKind kind_;
  uint32_t memory_type_ = UINT32_MAX;
  uint64_t block_bytes_;
  uint64_t alignment_;
  uint64_t max_allocation_;
  mutable std::mutex mu_;
  std::vector<Block> blocks_;
  std::atomic<uint64_t> in_use_{0};  // read without the lock by bytes_in_use()
};

}  // namespace tandem::gpu
