// Instance and device: enumeration, feature report, selection errors, the headless ICD fallback.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "runtime/core/knobs.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/gpu/vulkan_instance.h"
#include "tests/unit/gpu/gpu_test_device.h"

namespace tandem::gpu {
namespace {

TEST(GpuDevice, ListsAndDescribesDevices) {
  TANDEM_GPU_OR_SKIP(dev);
  const auto all = GpuDevice::list();
  ASSERT_FALSE(all.empty());
  const std::string text = describe(all[0]);
  EXPECT_NE(text.find(all[0].name), std::string::npos);
  EXPECT_NE(text.find("maxStorageBufferRange"), std::string::npos);
  EXPECT_GT(dev.info().max_storage_buffer_range, 0u);
  EXPECT_NE(dev.info().compute_queue_family, UINT32_MAX);
  EXPECT_FALSE(dev.info().heaps.empty());
}

TEST(GpuDevice, OutOfRangeIndexIsAnError) {
  TANDEM_GPU_OR_SKIP(dev);
  try {
    GpuDevice::open(999);
    FAIL() << "opened GPU 999";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GPU 999"), std::string::npos) << e.what();
  }
}

// Restores an environment variable when the test ends.
class EnvOverride {
 public:
  EnvOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1); else unsetenv(name);
    tandem::knobs::reload_environment();  // TANDEM_* knobs read the environment once
  }
  ~EnvOverride() {
    if (old_) setenv(name_, old_->c_str(), 1); else unsetenv(name_);
    tandem::knobs::reload_environment();
  }
 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string lavapipe_library() {
  return find_library_file("libvulkan_lvp.so", {"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
                                                "/usr/lib/aarch64-linux-gnu"});
}

TEST(VulkanInstance, NoDriverIsAnErrorListingAttempts) {
  TANDEM_GPU_OR_SKIP(dev);
  EnvOverride files("VK_DRIVER_FILES", "/nonexistent/tandem-none.json");
  EnvOverride icd("VK_ICD_FILENAMES", "/nonexistent/tandem-none.json");
  EnvOverride fallback("TANDEM_VULKAN_FALLBACK_DRIVER", "/nonexistent/libEGL_nvidia.so.0");
  try {
    VulkanInstance::create();
    FAIL() << "an instance without drivers reported devices";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("no Vulkan device found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fallback manifest"), std::string::npos) << msg;
  }
}

TEST(VulkanInstance, FallbackManifestFindsTheDriver) {
  TANDEM_GPU_OR_SKIP(dev);
  const std::string lib = lavapipe_library();
  if (lib.empty()) GTEST_SKIP() << "lavapipe (libvulkan_lvp.so) not installed";
  // The installed drivers are hidden; the fallback manifest must bring lavapipe back.
  EnvOverride files("VK_DRIVER_FILES", "/nonexistent/tandem-none.json");
  EnvOverride icd("VK_ICD_FILENAMES", "/nonexistent/tandem-none.json");
  EnvOverride fallback("TANDEM_VULKAN_FALLBACK_DRIVER", lib.c_str());
  auto inst = VulkanInstance::create();
  EXPECT_FALSE(inst->physical_devices().empty());
  ASSERT_EQ(inst->attempts().size(), 2u);
  EXPECT_NE(inst->attempts()[1].find(lib), std::string::npos) << inst->attempts()[1];
}

TEST(VulkanInstance, ManifestNamesTheLibrary) {
  const std::string path = write_icd_manifest("/opt/x/libEGL_nvidia.so.0");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("\"library_path\": \"/opt/x/libEGL_nvidia.so.0\""), std::string::npos) << text;
  std::filesystem::remove(path);
}

TEST(VulkanInstance, FindsLibraryInGivenDirs) {
  const auto dir = std::filesystem::temp_directory_path() / "tandem-find-lib";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "libEGL_nvidia.so.0") << "x";
  EXPECT_EQ(find_library_file("libEGL_nvidia.so.0", {"/nonexistent", dir.string()}),
            (dir / "libEGL_nvidia.so.0").string());
  EXPECT_EQ(find_library_file("libnothing.so", {dir.string()}), "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem::gpu
