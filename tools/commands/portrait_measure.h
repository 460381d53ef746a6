// Measures this machine's portrait (placement/machine_portrait.h): `tandem bench numa` prints
// it, `tandem tune` predicts from it.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "placement/machine_portrait.h"

namespace tandem::tools {

struct PortraitOptions {
  size_t megabytes = 64;  // per bandwidth buffer
  int passes = 2;
  bool smt = false;
  bool gpus = true;       // copy bandwidth per Vulkan device
  bool kernels = true;    // expert kernel rates
  std::vector<std::string> kernel_types = {"q4_K", "q6_K", "q8_0"};
  bool every_isa = true;  // every ISA this CPU runs, else only the selected one
  double kernel_seconds = 0.05;
  // Called before each measurement with what it measures (progress lines).
  std::function<void(const std::string&)> on_step;
};

placement::MachinePortrait measure_portrait(const PortraitOptions& o);

}  // namespace tandem::tools
