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
  std::vector<std::string> kernel_types = {"q4_K", "q6_K"};
  // Which ISAs get kernel rates: the SIMD paths this CPU runs (avx2, avx512), with scalar too
  // when every_isa, or only the selected one (TANDEM_CPU_ISA or the best) when selected_only.
  bool every_isa = false;
  bool selected_only = false;
  double kernel_seconds = 0.05;
  // Called before each measurement with what it measures (progress lines).
  std::function<void(const std::string&)> on_step;
};

placement::MachinePortrait measure_portrait(const PortraitOptions& o);

}  // namespace tandem::tools
