#include "runtime/gpu/vulkan_api.h"

#include <dlfcn.h>

#include <mutex>

#include "runtime/core/error.h"

namespace tandem::gpu {
namespace {

VulkanApi g_api;
std::once_flag g_loader_once;
std::string g_loader_error;

}  // namespace

const VulkanApi& vk() { return g_api; }

void load_vulkan_loader() {
  std::call_once(g_loader_once, [] {
    void* lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      g_loader_error = std::string("Vulkan loader libvulkan.so.1 not found (install libvulkan1): ") +
                       (why ? why : "dlopen failed");
      return;
    }
    g_api.vkGetInstanceProcAddr =
        reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
    if (!g_api.vkGetInstanceProcAddr) {
      g_loader_error = "Vulkan loader libvulkan.so.1 has no vkGetInstanceProcAddr";
      return;
    }
#define TANDEM_VK_LOAD_GLOBAL(name) \
  g_api.name = reinterpret_cast<PFN_##name>(g_api.vkGetInstanceProcAddr(nullptr, #name));
    TANDEM_VK_GLOBAL_FUNCTIONS(TANDEM_VK_LOAD_GLOBAL)
#undef TANDEM_VK_LOAD_GLOBAL
    if (!g_api.vkCreateInstance) g_loader_error = "Vulkan loader has no vkCreateInstance";
  });
  if (!g_loader_error.empty()) fail(g_loader_error);
}

void load_instance_functions(VkInstance instance) {
#define TANDEM_VK_LOAD_INSTANCE(name)                                                       \
  g_api.name = reinterpret_cast<PFN_##name>(g_api.vkGetInstanceProcAddr(instance, #name)); \
  if (!g_api.name) fail("Vulkan loader does not provide " #name " (need Vulkan 1.1)");
  TANDEM_VK_INSTANCE_FUNCTIONS(TANDEM_VK_LOAD_INSTANCE)
#undef TANDEM_VK_LOAD_INSTANCE
}

std::string vk_result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY (out of host memory)";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY (out of device memory)";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED (driver failed to initialise)";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST (device lost: driver reset or hang)";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER (no usable driver)";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult " + std::to_string(int(r));
  }
}

void check_vk(VkResult r, const char* what) {
  if (r != VK_SUCCESS) fail("Vulkan: ", what, ": ", vk_result_name(r));
}

}  // namespace tandem::gpu
