// What a physical device offers that matters to tandem's kernels, queried once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gpu/vulkan_api.h"

namespace tandem::gpu {

struct GpuMemoryHeap {
  uint64_t size = 0;
  bool device_local = false;
};

// One cooperative-matrix shape (M x K) * (K x N) + (M x N) a device runs at subgroup scope.
struct CooperativeMatrixShape {
  uint32_t m = 0, n = 0, k = 0;
};

struct GpuDeviceInfo {
  uint32_t index = 0;
  std::string name;
  std::string type;  // "discrete", "integrated", "virtual", "cpu", "other"
  uint32_t vendor_id = 0;
  uint32_t device_id = 0;
  uint32_t api_version = 0;
  std::string driver;  // driver name and info when the device reports them
  std::vector<GpuMemoryHeap> heaps;

  uint32_t subgroup_size = 0;
  bool subgroup_in_compute = false;
  bool subgroup_arithmetic = false;
  bool subgroup_shuffle = false;
  bool subgroup_ballot = false;

  bool storage_16bit = false;   // storageBuffer16BitAccess
  bool float16_arith = false;   // shaderFloat16
  bool storage_8bit = false;    // storageBuffer8BitAccess
  bool int8_arith = false;      // shaderInt8
  bool int_dot_product = false;  // shaderIntegerDotProduct (1.3 or VK_KHR_shader_integer_dot_product)
  bool int_dot_4x8_accelerated = false;
  bool cooperative_matrix_khr = false;  // VK_KHR_cooperative_matrix extension present
  bool cooperative_matrix_nv = false;   // VK_NV_cooperative_matrix extension present
  // VK_NV_cooperative_matrix feature on for compute, and the shapes with F16 A/B and F32 C/D
  // (vkGetPhysicalDeviceCooperativeMatrixPropertiesNV); empty when the device has none.
  bool cooperative_matrix_nv_feature = false;
  std::vector<CooperativeMatrixShape> cooperative_matrix_f16_shapes;
  bool buffer_device_address = false;

  uint64_t max_storage_buffer_range = 0;
  uint64_t min_storage_buffer_offset_alignment = 0;
  uint64_t max_memory_allocation_size = 0;
  uint32_t max_compute_shared_memory = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_push_constants_size = 0;
  float timestamp_period_ns = 0;
  bool timestamps = false;  // the compute queue has valid timestamp bits
  uint32_t compute_queue_family = UINT32_MAX;
  std::vector<std::string> extensions;

  bool has_extension(const std::string& name) const;
  uint64_t device_local_bytes() const;
};

GpuDeviceInfo query_device_info(VkPhysicalDevice dev, uint32_t index);

// Multi-line human description (what `tandem gpus` prints for one device).
std::string describe(const GpuDeviceInfo& info);

}  // namespace tandem::gpu
