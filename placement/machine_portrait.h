// A machine's portrait: what `tandem bench numa` measures and `tandem tune` predicts from. Read
// bandwidth from every NUMA node's cores to every node's memory, how one node's bandwidth grows
// with its thread count, interleaved against node-bound memory, copy bandwidth between host and
// every Vulkan GPU (pinned and pageable), and the expert kernels' rates per weight type and ISA.
// The file ("tandem-machine-portrait", version 1) is documented in bench/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "placement/topology.h"

namespace tandem::placement {

struct PortraitNode {
  int node = 0;  // index into the matrix (the n-th node with CPUs)
  int cores = 0;
  uint64_t memory_bytes = 0;
};

struct ScalingPoint {
  int threads = 0;
  double gb_per_s = 0;
};

struct NodeScaling {
  int node = 0;
  std::vector<ScalingPoint> points;  // ascending threads
  int saturates_at = 0;              // fewest threads within 90% of the best point
};

struct PortraitGpu {
  int index = 0;
  std::string name;
  uint64_t device_local_bytes = 0;
  bool software = false;  // CPU-backed (lavapipe)
  double h2d_pinned = 0, h2d_pageable = 0, d2h_pinned = 0, d2h_pageable = 0;  // GB/s
  double device_copy = 0;  // GB/s read+written by a device-local to device-local copy
};

struct KernelRate {
  std::string type;  // ggml type name, e.g. "q4_K"
  std::string isa;   // scalar, avx2, avx512, amx
  int threads = 0;
  double gemv_gb_per_s = 0;  // one token: expert weight bytes streamed per second
  double gemm_gflops = 0;    // many tokens (`gemm_tokens`): multiply-adds x2 per second
  int gemm_tokens = 0;
};

struct MachinePortrait {
  std::string host, cpu, isa;  // isa: the best path this CPU runs
  std::vector<PortraitNode> nodes;
  std::vector<std::vector<double>> read_gb_per_s;  // [cpu node][memory node], every core of the cpu node
  std::vector<NodeScaling> scaling;
  double interleaved_gb_per_s = 0;  // every node's cores reading memory interleaved over all nodes
  double bound_gb_per_s = 0;        // every node's cores reading their own node's memory at once
  std::vector<PortraitGpu> gpus;
  std::vector<KernelRate> kernels;

  // Local bandwidth of `node` with `threads` threads, interpolated on its scaling curve (scaled
  // to the matrix's diagonal); the diagonal itself without a curve.
  double node_bandwidth(int node, int threads) const;
  // The best kernel rate for a weight type (any ISA measured, the best ISA first); null if none.
  const KernelRate* kernel(const std::string& type) const;
  // The machine as a plan's Topology: nodes with their cores and memory, GPUs with their VRAM.
  Topology topology() const;
};

inline constexpr int kPortraitVersion = 1;

// Throws Error naming `source` and the field at fault.
MachinePortrait parse_portrait(const std::string& text, const std::string& source);
MachinePortrait read_portrait_file(const std::string& path);
nlohmann::json portrait_json(const MachinePortrait& p);
// The readable table `tandem bench numa` prints.
std::string portrait_table(const MachinePortrait& p);
// An SVG chart of the bandwidth curves (threads per node against GB/s, one line per node, with
// the interleaved / bound / GPU copy figures as labelled bars). Hand-written SVG text: no Debian
// charting library writes SVG from C++ without pulling in a toolkit.
std::string portrait_svg(const MachinePortrait& p);

}  // namespace tandem::placement
