#include "runtime/gpu/device_info.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "runtime/gpu/vulkan_instance.h"

namespace tandem::gpu {

bool GpuDeviceInfo::has_extension(const std::string& name) const {
  return std::find(extensions.begin(), extensions.end(), name) != extensions.end();
}

uint64_t GpuDeviceInfo::device_local_bytes() const {
  uint64_t total = 0;
  for (const auto& h : heaps)
    if (h.device_local) total += h.size;
  return total;
}

GpuDeviceInfo query_device_info(VkPhysicalDevice dev, uint32_t index) {
  const auto& api = vk();
  GpuDeviceInfo info;
  info.index = index;

  uint32_t n_ext = 0;
  api.vkEnumerateDeviceExtensionProperties(dev, nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  api.vkEnumerateDeviceExtensionProperties(dev, nullptr, &n_ext, exts.data());
  for (const auto& e : exts) info.extensions.emplace_back(e.extensionName);

  VkPhysicalDeviceProperties base{};
  api.vkGetPhysicalDeviceProperties(dev, &base);
  info.api_version = base.apiVersion;
  const bool v12 = base.apiVersion >= VK_API_VERSION_1_2;
  const bool v13 = base.apiVersion >= VK_API_VERSION_1_3;

  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties maint3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceDriverProperties driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceShaderIntegerDotProductProperties dotp{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
  const bool has_dot = v13 || info.has_extension("VK_KHR_shader_integer_dot_product");
  void** tail = &props.pNext;
  auto link = [&tail](auto& next) {
    *tail = &next;
    tail = &next.pNext;
  };
  link(subgroup);
  link(maint3);
  if (v12) link(driver);
  if (has_dot) link(dotp);
  api.vkGetPhysicalDeviceProperties2(dev, &props);

  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceShaderIntegerDotProductFeatures fdot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  VkPhysicalDevice16BitStorageFeatures f16s{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
  tail = &feats.pNext;
  if (v12) {
    link(f11);
    link(f12);
  } else {
    link(f16s);
  }
  if (has_dot) link(fdot);
  VkPhysicalDeviceCooperativeMatrixFeaturesNV fcoop{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  const bool has_coop_nv = info.has_extension("VK_NV_cooperative_matrix");
  if (has_coop_nv) link(fcoop);
  api.vkGetPhysicalDeviceFeatures2(dev, &feats);

  const auto& p = props.properties;
  info.name = p.deviceName;
  switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info.type = "discrete"; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info.type = "integrated"; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info.type = "virtual"; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: info.type = "cpu"; break;
    default: info.type = "other";
  }
  info.vendor_id = p.vendorID;
  info.device_id = p.deviceID;
  if (v12) info.driver = std::string(driver.driverName) + " " + driver.driverInfo;

  VkPhysicalDeviceMemoryProperties mem{};
  api.vkGetPhysicalDeviceMemoryProperties(dev, &mem);
  for (uint32_t i = 0; i < mem.memoryHeapCount; ++i)
    info.heaps.push_back({mem.memoryHeaps[i].size, (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0});

  info.subgroup_size = subgroup.subgroupSize;
  info.subgroup_in_compute = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
  info.subgroup_arithmetic = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0;
  info.subgroup_shuffle = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
  info.subgroup_ballot = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT) != 0;

  if (v12) {
    info.storage_16bit = f11.storageBuffer16BitAccess;
    info.float16_arith = f12.shaderFloat16;
    info.storage_8bit = f12.storageBuffer8BitAccess;
    info.int8_arith = f12.shaderInt8;
    info.buffer_device_address = f12.bufferDeviceAddress;
  } else {
    info.storage_16bit = f16s.storageBuffer16BitAccess;
  }
  info.int_dot_product = fdot.shaderIntegerDotProduct;
  info.int_dot_4x8_accelerated = info.int_dot_product && dotp.integerDotProduct4x8BitPackedSignedAccelerated;
  info.cooperative_matrix_khr = info.has_extension("VK_KHR_cooperative_matrix");
  info.cooperative_matrix_nv = info.has_extension("VK_NV_cooperative_matrix");
  if (has_coop_nv && fcoop.cooperativeMatrix) {
    // An extension entry point: looked up here, absent from the loader's core table.
    auto props_nv = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        api.vkGetInstanceProcAddr(VulkanInstance::shared()->handle(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    uint32_t n = 0;
    if (props_nv && props_nv(dev, &n, nullptr) == VK_SUCCESS && n > 0) {
      std::vector<VkCooperativeMatrixPropertiesNV> cm(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
      if (props_nv(dev, &n, cm.data()) == VK_SUCCESS) {
        info.cooperative_matrix_nv_feature = true;
        for (uint32_t i = 0; i < n; ++i) {
          const auto& c = cm[i];
          if (c.AType == VK_COMPONENT_TYPE_FLOAT16_NV && c.BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
              c.CType == VK_COMPONENT_TYPE_FLOAT32_NV && c.DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
              c.scope == VK_SCOPE_SUBGROUP_NV)
            info.cooperative_matrix_f16_shapes.push_back({c.MSize, c.NSize, c.KSize});
        }
      }
    }
  }

  info.max_storage_buffer_range = p.limits.maxStorageBufferRange;
  info.min_storage_buffer_offset_alignment = p.limits.minStorageBufferOffsetAlignment;
  info.max_memory_allocation_size = maint3.maxMemoryAllocationSize;
  info.max_compute_shared_memory = p.limits.maxComputeSharedMemorySize;
  info.max_workgroup_invocations = p.limits.maxComputeWorkGroupInvocations;
  info.max_push_constants_size = p.limits.maxPushConstantsSize;
  info.timestamp_period_ns = p.limits.timestampPeriod;

  uint32_t n_q = 0;
  api.vkGetPhysicalDeviceQueueFamilyProperties(dev, &n_q, nullptr);
  std::vector<VkQueueFamilyProperties> qs(n_q);
  api.vkGetPhysicalDeviceQueueFamilyProperties(dev, &n_q, qs.data());
  // Prefer a compute queue without graphics (async compute), else any compute queue.
  for (int pass = 0; pass < 2 && info.compute_queue_family == UINT32_MAX; ++pass)
    for (uint32_t i = 0; i < n_q; ++i) {
      const bool compute = qs[i].queueFlags & VK_QUEUE_COMPUTE_BIT;
      const bool graphics = qs[i].queueFlags & VK_QUEUE_GRAPHICS_BIT;
      if (compute && (pass == 1 || !graphics)) {
        info.compute_queue_family = i;
        info.timestamps = qs[i].timestampValidBits > 0;
        break;
      }
    }
  return info;
}

namespace {
std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / (1024.0 * 1024 * 1024));
  return buf;
}
std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f MiB", double(bytes) / (1024.0 * 1024));
  return buf;
}
const char* yes(bool b) { return b ? "yes" : "no"; }
}  // namespace

std::string describe(const GpuDeviceInfo& i) {
  std::ostringstream s;
  char vendor[64];
  std::snprintf(vendor, sizeof vendor, "vendor 0x%04x device 0x%04x", i.vendor_id, i.device_id);
  s << "GPU " << i.index << ": " << i.name << " (" << i.type << ", " << vendor << ")\n";
  s << "  Vulkan " << VK_API_VERSION_MAJOR(i.api_version) << "." << VK_API_VERSION_MINOR(i.api_version) << "."
    << VK_API_VERSION_PATCH(i.api_version);
  if (!i.driver.empty()) s << ", driver " << i.driver;
  s << "\n  memory heaps:";
  for (size_t h = 0; h < i.heaps.size(); ++h)
    s << (h ? "," : "") << " " << gib(i.heaps[h].size) << (i.heaps[h].device_local ? " device-local" : " host");
  s << "\n  subgroup: size " << i.subgroup_size << ", compute " << yes(i.subgroup_in_compute) << ", arithmetic "
    << yes(i.subgroup_arithmetic) << ", shuffle " << yes(i.subgroup_shuffle) << ", ballot " << yes(i.subgroup_ballot)
    << "\n  16-bit storage " << yes(i.storage_16bit) << ", float16 arithmetic " << yes(i.float16_arith)
    << ", 8-bit storage " << yes(i.storage_8bit) << ", int8 arithmetic " << yes(i.int8_arith)
    << "\n  integer dot product " << yes(i.int_dot_product) << " (4x8 accelerated " << yes(i.int_dot_4x8_accelerated)
    << "), cooperative matrix " << (i.cooperative_matrix_khr ? "KHR" : i.cooperative_matrix_nv ? "NV" : "no")
    << ", buffer device address " << yes(i.buffer_device_address);
  if (!i.cooperative_matrix_f16_shapes.empty()) {
    s << "\n  cooperative matrix f16 -> f32 shapes (NV):";
    for (const auto& c : i.cooperative_matrix_f16_shapes) s << " " << c.m << "x" << c.n << "x" << c.k;
  }
  s << "\n  maxStorageBufferRange "
    << mib(i.max_storage_buffer_range) << ", maxMemoryAllocationSize " << gib(i.max_memory_allocation_size)
    << ", shared memory " << i.max_compute_shared_memory / 1024 << " KiB, timestamps " << yes(i.timestamps) << "\n";
  return s.str();
}

}  // namespace tandem::gpu
