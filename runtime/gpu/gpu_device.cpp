#include "runtime/gpu/gpu_device.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/gpu/codebooks.h"

namespace tandem::gpu {

namespace {

// TANDEM_GPU_LOGICAL_COPIES: device index i is physical device i / copies (its own VkDevice,
// queue and memory), so plans over several GPUs run on one.
uint32_t logical_copies() { return uint32_t(knobs::integer("TANDEM_GPU_LOGICAL_COPIES", 1, 16, 1)); }

}  // namespace

std::vector<GpuDeviceInfo> GpuDevice::list() {
  auto inst = VulkanInstance::shared();
  const uint32_t copies = logical_copies();
  std::vector<GpuDeviceInfo> out;
  for (uint32_t i = 0; i < inst->physical_devices().size() * copies; ++i)
    out.push_back(query_device_info(inst->physical_devices()[i / copies], i));
  return out;
}

std::unique_ptr<GpuDevice> GpuDevice::open(uint32_t index, const GpuDeviceOptions& options) {
  auto inst = VulkanInstance::shared();
  const auto& devs = inst->physical_devices();
  const uint32_t copies = logical_copies();
  if (index >= devs.size() * copies)
    fail("GPU ", index, " does not exist: the Vulkan loader reports ", devs.size() * copies, " device(s)");
  std::unique_ptr<GpuDevice> d(new GpuDevice());
  d->instance_ = inst;
  d->options_ = options;
  d->physical_ = devs[index / copies];
  d->info_ = query_device_info(d->physical_, index);
  const auto& info = d->info_;
  const auto& api = vk();
  if (info.compute_queue_family == UINT32_MAX) fail("GPU ", index, " (", info.name, ") has no compute queue");

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = info.compute_queue_family;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;

  // Enable what the kernels may use when the device has it; plain shaders need none of it.
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  std::vector<const char*> exts;
  const bool v12 = info.api_version >= VK_API_VERSION_1_2 && inst->api_version() >= VK_API_VERSION_1_2;
  if (v12) {
    feats.pNext = &f11;
    f11.pNext = &f12;
    f11.storageBuffer16BitAccess = info.storage_16bit;
    f12.shaderFloat16 = info.float16_arith;
    f12.shaderInt8 = info.int8_arith;
    f12.storageBuffer8BitAccess = info.storage_8bit;
    if (info.int_dot_product) {
      f12.pNext = &fdot;
      fdot.shaderIntegerDotProduct = VK_TRUE;
      if (info.api_version < VK_API_VERSION_1_3) exts.push_back("VK_KHR_shader_integer_dot_product");
    }
  }
  // Cooperative matrices (tiled prefill GEMM, F16 tiles): needs shaderFloat16 beside the extension.
  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcoop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  if (v12 && info.cooperative_matrix_nv_feature && info.float16_arith) {
    fcoop.cooperativeMatrix = VK_TRUE;
    fcoop.pNext = feats.pNext;
    feats.pNext = &fcoop;
    exts.push_back("VK_NV_cooperative_matrix");
  } else {
    d->info_.cooperative_matrix_f16_shapes.clear();  // info then says what kernels may use
  }
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.pNext = &feats;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.enabledExtensionCount = uint32_t(exts.size());
  dci.ppEnabledExtensionNames = exts.data();
  VkResult r = api.vkCreateDevice(d->physical_, &dci, nullptr, &d->device_);
  if (r != VK_SUCCESS) fail("GPU ", index, " (", info.name, "): vkCreateDevice: ", vk_result_name(r));
  api.vkGetDeviceQueue(d->device_, info.compute_queue_family, 0, &d->queue_);

  VkCommandPoolCreateInfo cpi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  cpi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  cpi.queueFamilyIndex = info.compute_queue_family;
  check_vk(api.vkCreateCommandPool(d->device_, &cpi, nullptr, &d->command_pool_), "vkCreateCommandPool");
  check_vk(api.vkCreateCommandPool(d->device_, &cpi, nullptr, &d->transfer_pool_), "vkCreateCommandPool");
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check_vk(api.vkCreateFence(d->device_, &fci, nullptr, &d->fence_), "vkCreateFence");

  std::vector<char> cache_data;
  if (!options.pipeline_cache_path.empty()) {
    std::ifstream in(options.pipeline_cache_path, std::ios::binary);
    if (in) cache_data.assign(std::istreambuf_iterator<char>(in), {});
  }
  VkPipelineCacheCreateInfo pci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  pci.initialDataSize = cache_data.size();
  pci.pInitialData = cache_data.empty() ? nullptr : cache_data.data();
  if (api.vkCreatePipelineCache(d->device_, &pci, nullptr, &d->pipeline_cache_) != VK_SUCCESS) {
    pci.initialDataSize = 0;  // a stale or foreign cache file is ignored
    pci.pInitialData = nullptr;
    check_vk(api.vkCreatePipelineCache(d->device_, &pci, nullptr, &d->pipeline_cache_), "vkCreatePipelineCache");
  }

  VkPhysicalDeviceMemoryProperties mem{};
  api.vkGetPhysicalDeviceMemoryProperties(d->physical_, &mem);
  const uint64_t align = std::max<uint64_t>(256, info.min_storage_buffer_offset_alignment);
  d->device_pool_ = std::make_unique<GpuMemoryPool>(d->device_, mem, MemoryKind::DeviceLocal, options.block_bytes,
                                                    align, info.max_memory_allocation_size);
  d->host_pool_ = std::make_unique<GpuMemoryPool>(d->device_, mem, MemoryKind::HostVisible, 16ull << 20, align,
                                                  info.max_memory_allocation_size);
  d->staging_ = d->host_pool_->allocate(options.staging_bytes, "staging buffer");
  return d;
}

GpuDevice::~GpuDevice() {
  const auto& api = vk();
  if (device_) api.vkDeviceWaitIdle(device_);
  save_pipeline_cache();
  for (auto& [key, p] : pipelines_) destroy_compute_pipeline(device_, p);
  staging_.reset();
  codebooks_.clear();
  host_pool_.reset();
  device_pool_.reset();
  if (pipeline_cache_) api.vkDestroyPipelineCache(device_, pipeline_cache_, nullptr);
  if (fence_) api.vkDestroyFence(device_, fence_, nullptr);
  if (command_pool_) api.vkDestroyCommandPool(device_, command_pool_, nullptr);
  if (transfer_pool_) api.vkDestroyCommandPool(device_, transfer_pool_, nullptr);
  if (device_) api.vkDestroyDevice(device_, nullptr);
}

GpuSpan GpuDevice::codebook(GgmlType type) {
  std::lock_guard<std::mutex> lock(codebook_mu_);
  auto it = codebooks_.find(type);
  if (it == codebooks_.end()) {
    const std::vector<uint32_t> words = codebook_words(type);
    GpuBuffer b = allocate(words.size() * 4, "i-quant codebook");
    upload(b.span(), words.data(), words.size() * 4);
    it = codebooks_.emplace(type, std::move(b)).first;
  }
  return it->second.span();
}

void GpuDevice::save_pipeline_cache() const {
  if (options_.pipeline_cache_path.empty() || !pipeline_cache_) return;
  size_t n = 0;
  if (vk().vkGetPipelineCacheData(device_, pipeline_cache_, &n, nullptr) != VK_SUCCESS || n == 0) return;
  std::vector<char> data(n);
  if (vk().vkGetPipelineCacheData(device_, pipeline_cache_, &n, data.data()) != VK_SUCCESS) return;
  std::ofstream out(options_.pipeline_cache_path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(n));  // best effort: a cache that cannot be written costs only time
}

GpuBuffer GpuDevice::allocate(uint64_t bytes, const char* what, MemoryKind kind) {
  return (kind == MemoryKind::DeviceLocal ? device_pool_ : host_pool_)->allocate(bytes, what);
}

const ComputePipeline& GpuDevice::pipeline(const PipelineSpec& spec) {
  std::lock_guard lock(pipeline_mu_);
  const std::string key = spec.key();
  auto it = pipelines_.find(key);
  if (it == pipelines_.end()) it = pipelines_.emplace(key, create_compute_pipeline(device_, pipeline_cache_, spec)).first;
  return it->second;
}

void GpuDevice::submit_and_wait(VkCommandBuffer cb) {
  const auto& api = vk();
  std::lock_guard lock(submit_mu_);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  check_vk(api.vkQueueSubmit(queue_, 1, &si, fence_), "vkQueueSubmit");
  // Ten minutes: a CPU implementation (lavapipe) is slow, but a hang must end in an error.
  const VkResult r = api.vkWaitForFences(device_, 1, &fence_, VK_TRUE, 600ull * 1000 * 1000 * 1000);
  if (r == VK_TIMEOUT) fail("GPU ", info_.index, " (", info_.name, "): command buffer did not finish in 10 minutes");
  check_vk(r, "waiting for the GPU");
  check_vk(api.vkResetFences(device_, 1, &fence_), "vkResetFences");
}

void GpuDevice::submit(VkCommandBuffer cb, VkFence fence) {
  std::lock_guard lock(submit_mu_);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  check_vk(vk().vkQueueSubmit(queue_, 1, &si, fence), "vkQueueSubmit");
}

VkCommandBuffer GpuDevice::begin_one_shot() {
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = transfer_pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  check_vk(vk().vkAllocateCommandBuffers(device_, &ai, &cb), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check_vk(vk().vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
  return cb;
}

void GpuDevice::end_one_shot(VkCommandBuffer cb) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT;
  vk().vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0,
                            nullptr, 0, nullptr);
  check_vk(vk().vkEndCommandBuffer(cb), "vkEndCommandBuffer");
  try {
    submit_and_wait(cb);
  } catch (...) {
    vk().vkFreeCommandBuffers(device_, transfer_pool_, 1, &cb);
    throw;
  }
  vk().vkFreeCommandBuffers(device_, transfer_pool_, 1, &cb);
}

void GpuDevice::upload(const GpuSpan& dst, const void* src, uint64_t bytes) {
  if (bytes > dst.size) fail("GPU upload of ", bytes, " bytes into a span of ", dst.size);
  std::lock_guard lock(staging_mu_);
  const auto* p = static_cast<const uint8_t*>(src);
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(bytes - done, staging_.size());
    std::memcpy(staging_.mapped(), p + done, n);
    VkCommandBuffer cb = begin_one_shot();
    VkBufferCopy c{staging_.span().offset, dst.offset + done, n};
    vk().vkCmdCopyBuffer(cb, staging_.span().buffer, dst.buffer, 1, &c);
    end_one_shot(cb);
    done += n;
  }
}

void GpuDevice::download(const GpuSpan& src, void* dst, uint64_t bytes) {
  if (bytes > src.size) fail("GPU download of ", bytes, " bytes from a span of ", src.size);
  std::lock_guard lock(staging_mu_);
  auto* p = static_cast<uint8_t*>(dst);
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(bytes - done, staging_.size());
    VkCommandBuffer cb = begin_one_shot();
    VkBufferCopy c{src.offset + done, staging_.span().offset, n};
    vk().vkCmdCopyBuffer(cb, src.buffer, staging_.span().buffer, 1, &c);
    end_one_shot(cb);
    std::memcpy(p + done, staging_.mapped(), n);
    done += n;
  }
}

void GpuDevice::fill_zero(const GpuSpan& dst) {
  if (dst.size % 4) fail("GPU fill_zero of ", dst.size, " bytes: size must be a multiple of 4");
  std::lock_guard lock(staging_mu_);
  VkCommandBuffer cb = begin_one_shot();
  vk().vkCmdFillBuffer(cb, dst.buffer, dst.offset, dst.size, 0);
  end_one_shot(cb);
}

}  // namespace tandem::gpu
