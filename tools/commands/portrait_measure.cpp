#include "tools/commands/portrait_measure.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>

#include "experts/cpu_isa.h"
#include "experts/cpu_topology.h"
#include "experts/memory_bandwidth.h"
#include "experts/moe_throughput.h"
#include "runtime/core/error.h"
#include "runtime/engine/placement_options.h"
#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/gpu_device.h"

namespace tandem::tools {
namespace {

std::vector<int> thread_steps(int max) {
  std::vector<int> steps;
  for (int t = 1; t < max; t *= 2) steps.push_back(t);
  steps.push_back(max);
  return steps;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      return c == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "";
}

template <typename F>
double best_seconds(int passes, F&& f) {
  f();  // warm-up
  double best = 1e30;
  for (int i = 0; i < passes; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

void measure_gpu(placement::PortraitGpu& g, size_t bytes, int passes) {
  auto dev = gpu::GpuDevice::open(uint32_t(g.index));
  gpu::GpuBuffer a = dev->allocate(bytes, "portrait copy source");
  gpu::GpuBuffer b = dev->allocate(bytes, "portrait copy target");
  gpu::GpuBuffer host = dev->allocate(bytes, "portrait pinned buffer", gpu::MemoryKind::HostVisible);
  std::vector<uint8_t> pageable(bytes, 1);
  std::memset(host.mapped(), 1, bytes);
  const double gb = double(bytes) / 1e9;
  auto copy_rate = [&](const gpu::GpuSpan& src, const gpu::GpuSpan& dst) {
    gpu::CommandSequence seq(*dev);
    seq.copy(src, dst);
    return gb / best_seconds(passes, [&] { seq.run(); });
  };
  g.h2d_pinned = copy_rate(host.span(), a.span());
  g.d2h_pinned = copy_rate(a.span(), host.span());
  g.device_copy = 2 * copy_rate(a.span(), b.span());  // read + written
  g.h2d_pageable = gb / best_seconds(passes, [&] { dev->upload(a.span(), pageable.data(), bytes); });
  g.d2h_pageable = gb / best_seconds(passes, [&] { dev->download(a.span(), pageable.data(), bytes); });
}

}  // namespace

placement::MachinePortrait measure_portrait(const PortraitOptions& o) {
  auto step = [&](const std::string& s) {
    if (o.on_step) o.on_step(s);
  };
  placement::MachinePortrait p;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) p.host = host;
  p.cpu = cpu_model_name();
  p.isa = std::string(experts::cpu_isa_name(experts::best_cpu_isa()));
  const auto cpus = experts::read_cpu_topology(o.smt);
  if (cpus.nodes.empty()) fail("bench numa: hwloc lists no NUMA node with usable CPUs");
  const placement::Topology topo = this_machine_topology();
  const size_t bytes = o.megabytes << 20;
  for (size_t n = 0; n < cpus.nodes.size(); ++n)
    p.nodes.push_back({int(n), int(cpus.nodes[n].pus.size()),
                       n < topo.nodes.size() ? topo.nodes[n].memory_bytes : topo.host_memory_bytes() / cpus.nodes.size()});

  step("read bandwidth, node x node");
  for (const auto& c : cpus.nodes) {
    std::vector<double> row;
    for (const auto& m : cpus.nodes)
      row.push_back(experts::measure_read_bandwidth(c, m.node, int(c.pus.size()), bytes, o.passes).gb_per_s);
    p.read_gb_per_s.push_back(std::move(row));
  }
  for (size_t n = 0; n < cpus.nodes.size(); ++n) {
    step("thread scaling of node " + std::to_string(n));
    placement::NodeScaling s;
    s.node = int(n);
    for (int t : thread_steps(int(cpus.nodes[n].pus.size())))
      s.points.push_back({t, experts::measure_read_bandwidth(cpus.nodes[n], cpus.nodes[n].node, t, bytes, o.passes).gb_per_s});
    double best = 0;
    for (const auto& pt : s.points) best = std::max(best, pt.gb_per_s);
    s.saturates_at = s.points.back().threads;
    for (const auto& pt : s.points)
      if (pt.gb_per_s >= 0.9 * best) {
        s.saturates_at = pt.threads;
        break;
      }
    p.scaling.push_back(std::move(s));
  }
  step("all nodes at once: bound and interleaved memory");
  p.bound_gb_per_s = experts::measure_aggregate_bandwidth(cpus.nodes, 0, bytes, o.passes, false);
  p.interleaved_gb_per_s = experts::measure_aggregate_bandwidth(cpus.nodes, 0, bytes, o.passes, true);

  if (o.gpus)
    for (size_t i = 0; i < topo.gpus.size(); ++i) {
      placement::PortraitGpu g;
      g.index = int(i), g.name = topo.gpus[i].name, g.device_local_bytes = topo.gpus[i].device_local_bytes;
      g.software = topo.gpus[i].software;
      step("copy bandwidth of GPU " + std::to_string(i) + " (" + g.name + ")");
      try {
        measure_gpu(g, std::min<size_t>(bytes, 64u << 20), o.passes);
      } catch (const Error& e) {  // kept, so that portrait indices stay Vulkan device indices
        step(std::string("GPU ") + std::to_string(i) + ": copies not measured: " + e.what());
        g.h2d_pinned = g.h2d_pageable = g.d2h_pinned = g.d2h_pageable = 1e-3;
        g.name += " (copies not measured)";
      }
      g.device_local_bytes = std::max<uint64_t>(g.device_local_bytes, 1);
      p.gpus.push_back(std::move(g));
    }

  if (o.kernels) {
    std::vector<experts::CpuIsa> isas;
    if (o.selected_only) {
      isas.push_back(experts::selected_cpu_isa());
    } else {
      for (auto isa : {experts::CpuIsa::Scalar, experts::CpuIsa::Avx2, experts::CpuIsa::Avx512})
        if (experts::cpu_supports(isa) && (o.every_isa || isa != experts::CpuIsa::Scalar)) isas.push_back(isa);
      if (isas.empty()) isas.push_back(experts::CpuIsa::Scalar);
    }
    for (const std::string& name : o.kernel_types) {
      const auto type = ggml_type_from_name(name);
      if (!type) fail("bench numa: unknown weight type '", name, "'");
      for (auto isa : isas) {
        step("expert kernels: " + name + " on " + std::string(experts::cpu_isa_name(isa)));
        experts::MoeBenchConfig c;
        c.type = *type;
        // Small enough to fill in a blink (random blocks cost time); the rates are an upper bound
        // the tuner caps the bandwidth with, not a DRAM figure.
        c.hidden = 1024, c.ffn = 512, c.n_experts = 8, c.k_used = 8, c.layers = 1;
        c.token_counts = {1, 64};
        c.min_seconds = o.kernel_seconds;
        MoeEngineOptions eo;
        eo.isa = isa;
        eo.repack_for_prefill = false;
        const auto r = experts::run_moe_bench(eo, c);
        placement::KernelRate k;
        k.type = std::string(ggml_type_name(*type));
        k.isa = std::string(experts::cpu_isa_name(isa));
        for (const auto& n : cpus.nodes) k.threads += int(n.pus.size());
        k.gemv_gb_per_s = r[0].weight_gb_per_s;
        k.gemm_tokens = int(r[1].tokens);
        k.gemm_gflops = 2.0 * double(r[1].tokens) * c.k_used * 3.0 * double(c.hidden * c.ffn) / r[1].seconds_per_forward / 1e9;
        p.kernels.push_back(std::move(k));
      }
    }
  }
  return p;
}

}  // namespace tandem::tools
