// One opened GPU: logical device, compute queue, memory pools, staging uploads/downloads and the
// pipeline cache. Kernels are recorded into a CommandSequence (command_sequence.h) against it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/gpu/compute_pipeline.h"
#include "runtime/gpu/device_info.h"
#include "runtime/gpu/gpu_buffer.h"
#include "runtime/gpu/vulkan_instance.h"

namespace tandem::gpu {

struct GpuDeviceOptions {
  // When set, the driver's pipeline cache is loaded from and saved to this file.
  std::string pipeline_cache_path;
  uint64_t block_bytes = 256ull << 20;    // device-local sub-allocator block
  uint64_t staging_bytes = 64ull << 20;   // host-visible staging buffer for uploads/downloads
};

// Thread use: upload/download/fill_zero/allocate/pipeline may be called from any thread; a
// CommandSequence is recorded by one thread at a time (its command pool is the device's).
class GpuDevice {
 public:
  // Every physical device the loader reports (tries the headless-NVIDIA fallback when none).
  static std::vector<GpuDeviceInfo> list();
  // Opens device `index` of list(); throws Error naming the index when out of range.
  static std::unique_ptr<GpuDevice> open(uint32_t index, const GpuDeviceOptions& options = {});

  ~GpuDevice();
  GpuDevice(const GpuDevice&) = delete;
  GpuDevice& operator=(const GpuDevice&) = delete;

  const GpuDeviceInfo& info() const { return info_; }
  VkDevice handle() const { return device_; }
  VkQueue queue() const { return queue_; }
  VkCommandPool command_pool() const { return command_pool_; }

  GpuBuffer allocate(uint64_t bytes, const char* what, MemoryKind kind = MemoryKind::DeviceLocal);
  uint64_t device_bytes_in_use() const { return device_pool_->bytes_in_use(); }

  // Blocking copies through the one staging buffer; callable from several threads (serialised).
  void upload(const GpuSpan& dst, const void* src, uint64_t bytes);
  void download(const GpuSpan& src, void* dst, uint64_t bytes);
  void fill_zero(const GpuSpan& dst);

  // Built on first use, then cached for the device's lifetime.
  const ComputePipeline& pipeline(const PipelineSpec& spec);
  // A lattice i-quant's codebook (codebooks.h), uploaded on first use, kept for the device's lifetime.
  GpuSpan codebook(GgmlType type);

  // Submits one recorded command buffer and waits; throws Error on device loss or timeout.
  void submit_and_wait(VkCommandBuffer cb);
  // Submits without waiting; `fence` (unsignalled) signals when the GPU is done.
  void submit(VkCommandBuffer cb, VkFence fence);
  void save_pipeline_cache() const;

 private:
  GpuDevice() = default;
  VkCommandBuffer begin_one_shot();
  void end_one_shot(VkCommandBuffer cb);

  std::shared_ptr<VulkanInstance> instance_;
  GpuDeviceInfo info_;
  GpuDeviceOptions options_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;   // CommandSequence buffers
  VkCommandPool transfer_pool_ = VK_NULL_HANDLE;  // one-shot copies, under staging_mu_
  VkFence fence_ = VK_NULL_HANDLE;
  VkPipelineCache pipeline_cache_ = VK_NULL_HANDLE;
  std::unique_ptr<GpuMemoryPool> device_pool_;
  std::unique_ptr<GpuMemoryPool> host_pool_;
  GpuBuffer staging_;
  std::mutex submit_mu_;
  std::mutex staging_mu_;  // staging buffer and one-shot command buffers
  std::mutex pipeline_mu_;
  std::map<std::string, ComputePipeline> pipelines_;
  std::mutex codebook_mu_;
  std::map<GgmlType, GpuBuffer> codebooks_;
};

}  // namespace tandem::gpu
