// The machine a plan is made for: NUMA nodes (cores, memory) from hwloc, and GPUs (device-local
// memory). GPUs are given by the caller (runtime/gpu's device listing, or --assume-gpu for tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::placement {

struct NumaNode {
  int index = 0;  // hwloc logical index
  int cores = 0;
  uint64_t memory_bytes = 0;
};

struct GpuInfo {
  int index = 0;
  std::string name;
  uint64_t device_local_bytes = 0;
  bool software = false;  // a CPU-backed Vulkan device (lavapipe): never chosen automatically
};

struct Topology {
  std::vector<NumaNode> nodes;  // at least one
  std::vector<GpuInfo> gpus;

  // This machine's NUMA nodes via hwloc; no GPUs (add them with add_gpu).
  static Topology detect_cpu();
  // A synthetic hwloc topology, e.g. "pack:2 numa:1(memory=64GB) core:4 pu:1"; throws Error on
  // a bad description.
  static Topology from_hwloc_synthetic(const std::string& description);

  void add_gpu(std::string name, uint64_t device_local_bytes);
  uint64_t host_memory_bytes() const;
  int total_cores() const;
};

// "24GiB", "512MiB", "80GB", "1234" (bytes) -> bytes; throws Error naming the text.
uint64_t parse_byte_size(const std::string& text);

}  // namespace tandem::placement
