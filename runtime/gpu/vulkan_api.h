// The Vulkan entry points tandem uses, loaded at run time from the Khronos loader
// (libvulkan.so.1) so that a machine without Vulkan gets a tandem::Error, not a failed exec.
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace tandem::gpu {

#define TANDEM_VK_GLOBAL_FUNCTIONS(X)      \
  X(vkCreateInstance)                      \
  X(vkEnumerateInstanceVersion)            \
  X(vkEnumerateInstanceExtensionProperties)

#define TANDEM_VK_INSTANCE_FUNCTIONS(X)        \
  X(vkDestroyInstance)                         \
  X(vkEnumeratePhysicalDevices)                \
  X(vkGetPhysicalDeviceProperties)             \
  X(vkGetPhysicalDeviceProperties2)            \
  X(vkGetPhysicalDeviceFeatures2)              \
  X(vkGetPhysicalDeviceMemoryProperties)       \
  X(vkGetPhysicalDeviceQueueFamilyProperties)  \
  X(vkEnumerateDeviceExtensionProperties)      \
  X(vkCreateDevice)                            \
  X(vkDestroyDevice)                           \
  X(vkGetDeviceQueue)                          \
  X(vkDeviceWaitIdle)                          \
  X(vkQueueSubmit)                             \
  X(vkQueueWaitIdle)                           \
  X(vkCreateCommandPool)                       \
  X(vkDestroyCommandPool)                      \
  X(vkAllocateCommandBuffers)                  \
  X(vkFreeCommandBuffers)                      \
  X(vkBeginCommandBuffer)                      \
  X(vkEndCommandBuffer)                        \
  X(vkCreateFence)                             \
  X(vkDestroyFence)                            \
  X(vkWaitForFences)                           \
  X(vkResetFences)                             \
  X(vkAllocateMemory)                          \
  X(vkFreeMemory)                              \
  X(vkMapMemory)                               \
  X(vkUnmapMemory)                             \
  X(vkCreateBuffer)                            \
  X(vkDestroyBuffer)                           \
  X(vkGetBufferMemoryRequirements)             \
  X(vkBindBufferMemory)                        \
  X(vkCreateShaderModule)                      \
  X(vkDestroyShaderModule)                     \
  X(vkCreatePipelineCache)                     \
  X(vkDestroyPipelineCache)                    \
  X(vkGetPipelineCacheData)                    \
  X(vkCreateComputePipelines)                  \
  X(vkDestroyPipeline)                         \
  X(vkCreatePipelineLayout)                    \
  X(vkDestroyPipelineLayout)                   \
  X(vkCreateDescriptorSetLayout)               \
  X(vkDestroyDescriptorSetLayout)              \
  X(vkCreateDescriptorPool)                    \
  X(vkDestroyDescriptorPool)                   \
  X(vkAllocateDescriptorSets)                  \
  X(vkUpdateDescriptorSets)                    \
  X(vkCreateQueryPool)                         \
  X(vkDestroyQueryPool)                        \
  X(vkGetQueryPoolResults)                     \
  X(vkCmdBindPipeline)                         \
  X(vkCmdBindDescriptorSets)                   \
  X(vkCmdPushConstants)                        \
  X(vkCmdDispatch)                             \
  X(vkCmdPipelineBarrier)                      \
  X(vkCmdCopyBuffer)                           \
  X(vkCmdFillBuffer)                           \
  X(vkCmdResetQueryPool)                       \
  X(vkCmdWriteTimestamp)

struct VulkanApi {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define TANDEM_VK_DECLARE(name) PFN_##name name = nullptr;
  TANDEM_VK_GLOBAL_FUNCTIONS(TANDEM_VK_DECLARE)
  TANDEM_VK_INSTANCE_FUNCTIONS(TANDEM_VK_DECLARE)
#undef TANDEM_VK_DECLARE
};

// The process-wide table. Entries are null until load_vulkan_loader() / load_instance_functions().
const VulkanApi& vk();

// dlopen()s the loader once; throws Error naming the library when it is missing.
void load_vulkan_loader();

// Fills the instance- and device-level entries (loader trampolines) from an instance.
void load_instance_functions(VkInstance instance);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY (out of device memory)" and so on.
std::string vk_result_name(VkResult r);

// Throws Error("<what>: <result>") unless r is VK_SUCCESS.
void check_vk(VkResult r, const char* what);

}  // namespace tandem::gpu
