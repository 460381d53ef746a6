// tandem bench numa: the machine's portrait (placement/machine_portrait.h): read bandwidth from
// every NUMA node's cores to every node's memory, its growth with threads per node, bound
// against interleaved memory, host<->GPU copy bandwidth per Vulkan device (pinned and pageable),
// and the expert kernels' GEMV/GEMM rates per type and ISA. A table, --json (the portrait file
// `tandem tune --portrait` reads) and --svg FILE (a chart of the bandwidth curves).
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "placement/machine_portrait.h"
#include "runtime/core/error.h"
#include "tools/command_registry.h"
#include "tools/commands/portrait_measure.h"

namespace tandem::tools {
namespace {

struct NumaBenchArgs {
  PortraitOptions portrait;
  bool json = false, quiet = false, no_gpu = false, no_kernels = false;
  std::string svg, out;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  if (!f || !(f << text)) fail("cannot write ", path);
}

void run_bench_numa(NumaBenchArgs a) {
  a.portrait.gpus = !a.no_gpu;
  a.portrait.kernels = !a.no_kernels;
  if (a.portrait.megabytes == 0) fail("--mb must be positive");
  if (a.portrait.passes < 1) fail("--passes must be positive");
  if (!a.quiet) a.portrait.on_step = [](const std::string& s) { std::fprintf(stderr, "measuring: %s\n", s.c_str()); };
  const placement::MachinePortrait p = measure_portrait(a.portrait);
  const std::string json = placement::portrait_json(p).dump(2) + "\n";
  if (!a.out.empty()) write_file(a.out, json);
  if (!a.svg.empty()) write_file(a.svg, placement::portrait_svg(p));
  if (a.json) std::printf("%s", json.c_str());
  else std::printf("%s", placement::portrait_table(p).c_str());
}

}  // namespace

void setup_bench_numa(CLI::App& bench) {
  auto a = std::make_shared<NumaBenchArgs>();
  CLI::App* cmd = bench.add_subcommand(
      "numa", "The machine's portrait: NUMA read bandwidth and thread scaling, GPU copy bandwidth, expert kernel rates");
  cmd->add_option("--mb", a->portrait.megabytes, "Buffer size per bandwidth probe in MiB")->capture_default_str();
  cmd->add_option("--passes", a->portrait.passes, "Timed passes (best is reported)")->capture_default_str();
  cmd->add_flag("--smt", a->portrait.smt, "Also use hyper-thread siblings");
  cmd->add_flag("--json", a->json, "Print the portrait as JSON (the file `tandem tune --portrait` reads)");
  cmd->add_option("--out,-o", a->out, "Also write the portrait JSON to this file");
  cmd->add_option("--svg", a->svg, "Write an SVG chart of the bandwidth curves to this file");
  cmd->add_flag("--no-gpu", a->no_gpu, "Skip the GPU copy measurements");
  cmd->add_flag("--no-kernels", a->no_kernels, "Skip the expert kernel rates");
  cmd->add_option("--types", a->portrait.kernel_types, "Weight types of the kernel rates")->delimiter(',')->capture_default_str();
  cmd->add_flag("--selected-isa", a->portrait.selected_only, "Kernel rates on the selected ISA only (default: every SIMD ISA this CPU runs)");
  cmd->add_flag("--every-isa", a->portrait.every_isa, "Kernel rates on the scalar path too");
  cmd->add_option("--kernel-seconds", a->portrait.kernel_seconds, "Timed seconds per kernel rate")->capture_default_str();
  cmd->add_flag("--quiet,-q", a->quiet, "No progress lines on stderr");
  cmd->callback([a] { run_bench_numa(*a); });
}

}  // namespace tandem::tools
