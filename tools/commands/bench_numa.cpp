// tandem bench numa: read bandwidth from every NUMA node's cores to every node's memory, and how
// local bandwidth scales with threads.
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "experts/cpu_topology.h"
#include "experts/memory_bandwidth.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

struct NumaBenchArgs {
  size_t megabytes = 256;
  int passes = 3;
  bool smt = false;
  bool json = false;
};

std::vector<int> thread_steps(int max) {
  std::vector<int> steps;
  for (int t = 1; t < max; t *= 2) steps.push_back(t);
  steps.push_back(max);
  return steps;
}

void run_bench_numa(const NumaBenchArgs& a) {
  const auto topo = experts::read_cpu_topology(a.smt);
  const size_t bytes = a.megabytes << 20;
  nlohmann::json out = {{"buffer_mb", a.megabytes}, {"matrix", nlohmann::json::array()},
                        {"scaling", nlohmann::json::array()}};
  if (!a.json) std::printf("read bandwidth, GB/s (rows: cores of node, columns: memory of node)\n%8s", "");
  if (!a.json)
    for (const auto& m : topo.nodes) std::printf(" %12s", ("mem " + std::to_string(m.node)).c_str());
  for (const auto& c : topo.nodes) {
    if (!a.json) std::printf("\ncpu %-4d", c.node);
    for (const auto& m : topo.nodes) {
      const auto s = experts::measure_read_bandwidth(c, m.node, int(c.pus.size()), bytes, a.passes);
      out["matrix"].push_back({{"cpu_node", c.node}, {"memory_node", m.node}, {"threads", s.threads},
                               {"gb_per_s", s.gb_per_s}});
      if (!a.json) std::printf(" %12.1f", s.gb_per_s), std::fflush(stdout);
    }
  }
  const auto& local = topo.nodes[0];
  if (!a.json) std::printf("\n\nlocal bandwidth of node %d by threads\n%8s %10s\n", local.node, "threads", "GB/s");
  for (int t : thread_steps(int(local.pus.size()))) {
    const auto s = experts::measure_read_bandwidth(local, local.node, t, bytes, a.passes);
    out["scaling"].push_back({{"node", local.node}, {"threads", t}, {"gb_per_s", s.gb_per_s}});
    if (!a.json) std::printf("%8d %10.1f\n", t, s.gb_per_s);
  }
  if (a.json) std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace

void setup_bench_numa(CLI::App& bench) {
  auto args = std::make_shared<NumaBenchArgs>();
  CLI::App* cmd = bench.add_subcommand("numa", "Read bandwidth matrix (cores of node x memory of node) and thread scaling");
  cmd->add_option("--mb", args->megabytes, "Buffer size in MiB")->capture_default_str();
  cmd->add_option("--passes", args->passes, "Timed passes (best is reported)")->capture_default_str();
  cmd->add_flag("--smt", args->smt, "Also use hyper-thread siblings");
  cmd->add_flag("--json", args->json, "Print JSON instead of tables");
  cmd->callback([args] { run_bench_numa(*args); });
}

}  // namespace tandem::tools
