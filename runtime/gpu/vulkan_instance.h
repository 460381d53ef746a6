// One Vulkan instance for the process, with the headless-NVIDIA fallback: when no driver answers
// (vkCreateInstance fails or reports no device), retry with a generated ICD manifest that names
// libEGL_nvidia.so.0, because the manifest NVIDIA ships names libGLX_nvidia.so.0, which fails
// without a display.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/gpu/vulkan_api.h"

namespace tandem::gpu {

class VulkanInstance {
 public:
  // Throws Error (listing what was tried) when no loader, no driver or no device answers.
  static std::shared_ptr<VulkanInstance> create();
  // The instance shared by every GpuDevice of the process (created on first use).
  static std::shared_ptr<VulkanInstance> shared();

  ~VulkanInstance();
  VulkanInstance(const VulkanInstance&) = delete;
  VulkanInstance& operator=(const VulkanInstance&) = delete;

  VkInstance handle() const { return instance_; }
  uint32_t api_version() const { return api_version_; }
  const std::vector<VkPhysicalDevice>& physical_devices() const { return devices_; }
  // One line per attempt: which drivers were tried and what they answered.
  const std::vector<std::string>& attempts() const { return attempts_; }

 private:
  VulkanInstance() = default;
  bool try_create(const std::string& label);

  VkInstance instance_ = VK_NULL_HANDLE;
  uint32_t api_version_ = VK_API_VERSION_1_1;
  std::vector<VkPhysicalDevice> devices_;
  std::vector<std::string> attempts_;
};

// Directories searched for the fallback driver library: LD_LIBRARY_PATH, then the usual places.
std::vector<std::string> fallback_driver_search_dirs();
// First dir/name that exists, or "".
std::string find_library_file(const std::string& name, const std::vector<std::string>& dirs);
// Writes an ICD manifest naming library_path; returns the manifest's path.
std::string write_icd_manifest(const std::string& library_path);

}  // namespace tandem::gpu
