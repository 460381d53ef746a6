// `tandem gpus`: the Vulkan devices tandem can use, with the features its kernels care about.
#include <cstdio>

#include "runtime/core/error.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/gpu/vulkan_instance.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

void setup_gpus(CLI::App& root) {
  auto* cmd = root.add_subcommand("gpus", "List the Vulkan GPUs with memory heaps and kernel-relevant features");
  cmd->callback([] {
    std::shared_ptr<gpu::VulkanInstance> inst;
    try {
      inst = gpu::VulkanInstance::shared();
    } catch (const Error& e) {
      fail(e.what());  // the message already lists each attempt
    }
    std::printf("Vulkan drivers tried:\n");
    for (const auto& a : inst->attempts()) std::printf("  %s\n", a.c_str());
    const auto devices = gpu::GpuDevice::list();
    for (const auto& info : devices) std::printf("%s", gpu::describe(info).c_str());
    if (devices.empty()) fail("no Vulkan device found");  // scripts test the exit status
  });
}

TANDEM_COMMAND(setup_gpus);

}  // namespace
}  // namespace tandem::tools
