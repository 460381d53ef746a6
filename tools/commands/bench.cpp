// tandem bench: measurement subcommands (numa, experts). The group is created here, in one
// place, and each measurement adds itself from its own file through the setup calls below.
#include "tools/command_registry.h"

namespace tandem::tools {

void setup_bench_numa(CLI::App& bench);     // bench_numa.cpp
void setup_bench_experts(CLI::App& bench);  // bench_experts.cpp
void setup_bench_decode(CLI::App& bench);   // bench_decode.cpp
void setup_bench_run(CLI::App& bench);      // bench_run.cpp

namespace {

void setup_bench(CLI::App& root) {
  CLI::App* bench = root.add_subcommand("bench", "Measure this machine and models: memory bandwidth, expert kernels, decode, whole-model speed");
  bench->require_subcommand(1);
  setup_bench_numa(*bench);
  setup_bench_experts(*bench);
  setup_bench_decode(*bench);
  setup_bench_run(*bench);
}

TANDEM_COMMAND(setup_bench);

}  // namespace
}  // namespace tandem::tools
