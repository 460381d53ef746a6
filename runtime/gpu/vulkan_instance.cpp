#include "runtime/gpu/vulkan_instance.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"

namespace tandem::gpu {

namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

}  // namespace

std::vector<std::string> fallback_driver_search_dirs() {
  std::vector<std::string> dirs;
  std::stringstream path(env_or("LD_LIBRARY_PATH", ""));
  for (std::string dir; std::getline(path, dir, ':');)
    if (!dir.empty()) dirs.push_back(dir);
  for (const char* d : {"/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu",
                        "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu",
                        "/lib64"})
    dirs.push_back(d);
  return dirs;
}

std::string find_library_file(const std::string& name, const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) {
    std::error_code ec;
    const auto p = std::filesystem::path(dir) / name;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  return "";
}

std::string write_icd_manifest(const std::string& library_path) {
  const std::string dir = env_or("TMPDIR", "/tmp");
  const std::string path = dir + "/tandem-icd-" + std::to_string(getpid()) + ".json";
  std::ofstream out(path, std::ios::trunc);
  out << "{\n  \"file_format_version\": \"1.0.0\",\n  \"ICD\": {\n    \"library_path\": \"" << library_path
      << "\",\n    \"api_version\": \"1.3.0\"\n  }\n}\n";
  if (!out) fail("Vulkan: cannot write ICD manifest ", path);
  return path;
}

bool VulkanInstance::try_create(const std::string& label) {
  const auto& api = vk();
  uint32_t loader_version = VK_API_VERSION_1_1;
  if (api.vkEnumerateInstanceVersion) api.vkEnumerateInstanceVersion(&loader_version);
  api_version_ = std::min<uint32_t>(loader_version, VK_API_VERSION_1_3);

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "tandem";
  app.pEngineName = "tandem";
  app.apiVersion = api_version_;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkInstance inst = VK_NULL_HANDLE;
  const VkResult r = api.vkCreateInstance(&ci, nullptr, &inst);
  if (r != VK_SUCCESS) {
    attempts_.push_back(label + ": vkCreateInstance failed: " + vk_result_name(r));
    return false;
  }
  load_instance_functions(inst);
  uint32_t n = 0;
  VkResult er = vk().vkEnumeratePhysicalDevices(inst, &n, nullptr);
  std::vector<VkPhysicalDevice> devs(n);
  if (er == VK_SUCCESS && n > 0) er = vk().vkEnumeratePhysicalDevices(inst, &n, devs.data());
  if (er != VK_SUCCESS && er != VK_INCOMPLETE) {
    attempts_.push_back(label + ": vkEnumeratePhysicalDevices failed: " + vk_result_name(er));
    vk().vkDestroyInstance(inst, nullptr);
    return false;
  }
  devs.resize(n);
  if (n == 0) {
    attempts_.push_back(label + ": instance created but no physical device");
    vk().vkDestroyInstance(inst, nullptr);
    return false;
  }
  attempts_.push_back(label + ": " + std::to_string(n) + " device(s)");
  instance_ = inst;
  devices_ = std::move(devs);
  return true;
}

std::shared_ptr<VulkanInstance> VulkanInstance::create() {
  load_vulkan_loader();
  std::shared_ptr<VulkanInstance> inst(new VulkanInstance());
  std::string label = "installed drivers";
  for (const char* var : {"VK_DRIVER_FILES", "VK_ICD_FILENAMES"})
    if (std::getenv(var)) label += std::string(" (") + var + "=" + std::getenv(var) + ")";
  if (inst->try_create(label)) return inst;

  // Headless NVIDIA: the shipped manifest names libGLX_nvidia.so.0; libEGL_nvidia.so.0 is the
  // same driver without the X dependency. TANDEM_VULKAN_FALLBACK_DRIVER names another library.
  std::string lib = knobs::text("TANDEM_VULKAN_FALLBACK_DRIVER").value_or("");
  if (lib.empty()) lib = find_library_file("libEGL_nvidia.so.0", fallback_driver_search_dirs());
  if (lib.empty()) {
    inst->attempts_.push_back("fallback: no libEGL_nvidia.so.0 on LD_LIBRARY_PATH or in the usual lib dirs");
  } else {
    const std::string manifest = write_icd_manifest(lib);
    std::fprintf(stderr, "tandem: no Vulkan driver answered; retrying with generated ICD manifest %s -> %s\n",
                 manifest.c_str(), lib.c_str());
    setenv("VK_DRIVER_FILES", manifest.c_str(), 1);
    setenv("VK_ICD_FILENAMES", manifest.c_str(), 1);
    if (inst->try_create("fallback manifest " + manifest + " (" + lib + ")")) return inst;
  }
  std::string msg = "no Vulkan device found; tried:";
  for (const auto& a : inst->attempts_) msg += "\n  " + a;
  fail(msg);
}

std::shared_ptr<VulkanInstance> VulkanInstance::shared() {
  static std::mutex mu;
  static std::weak_ptr<VulkanInstance> current;
  std::lock_guard lock(mu);
  if (auto live = current.lock()) return live;
  auto inst = create();
  current = inst;
  return inst;
}

VulkanInstance::~VulkanInstance() {
  if (instance_) vk().vkDestroyInstance(instance_, nullptr);
}

}  // namespace tandem::gpu
