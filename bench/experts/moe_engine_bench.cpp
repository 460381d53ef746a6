// bench_moe_engine: `tandem bench experts` without the rest of the runtime (links only the
// expert engine), so device runs of the engine need not build the GPU side. Same synthetic layer
// (experts/moe_throughput.h), same seeds as ggml_moe_peer; JSON on stdout with the read bandwidth
// of the same threads and each token count's time and fraction of it.
//   bench_moe_engine --type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers 4 --tokens 1,4,64,512
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "experts/memory_bandwidth.h"
#include "experts/moe_throughput.h"
#include "runtime/core/error.h"

int main(int argc, char** argv) {
  using namespace tandem;
  CLI::App app{"MoE expert engine throughput on a synthetic layer"};
  std::string type_name = "Q4_K";
  experts::MoeBenchConfig c;
  int threads_per_node = 0;
  int64_t bandwidth_mb = 256;
  std::string down_type_name;
  app.add_option("--type", type_name, "Type of gate and up (and down unless --down-type)");
  app.add_option("--down-type", down_type_name, "Type of down (V2-Lite: Q5_0, its ffn 1408 is no multiple of 256)");
  app.add_option("--gap-us", c.gap_us, "Sleep between forwards (the GPU's attention in hybrid decode)");
  app.add_option("--hidden", c.hidden);
  app.add_option("--ffn", c.ffn);
  app.add_option("--experts", c.n_experts);
  app.add_option("--k", c.k_used);
  app.add_option("--tokens", c.token_counts)->delimiter(',');
  app.add_option("--layers", c.layers);
  app.add_option("--seconds", c.min_seconds);
  app.add_option("--threads-per-node", threads_per_node);
  app.add_option("--bw-mb", bandwidth_mb, "Buffer of the bandwidth probe (0: skip)");
  CLI11_PARSE(app, argc, argv);
  try {
    const auto type = ggml_type_from_name(type_name);
    if (!type) fail("--type ", type_name, ": unknown ggml type");
    c.type = *type;
    if (!down_type_name.empty()) {
      const auto down = ggml_type_from_name(down_type_name);
      if (!down) fail("--down-type ", down_type_name, ": unknown ggml type");
      c.down_type = *down;
    }
    MoeEngineOptions o;
    o.threads_per_node = threads_per_node;
    o.max_nodes = 1;
    const auto plan = experts::plan_node_pools(experts::read_cpu_topology(), threads_per_node);
    double bandwidth = 0;
    if (bandwidth_mb > 0)
      bandwidth = experts::measure_read_bandwidth(plan[0], plan[0].node, int(plan[0].pus.size()),
                                                  size_t(bandwidth_mb) << 20, 3).gb_per_s;
    const auto results = experts::run_moe_bench(o, c);
    nlohmann::json out = {{"type", ggml_type_name(c.type)},
                          {"down_type", ggml_type_name(c.down_type.value_or(c.type))}, {"hidden", c.hidden},
                          {"ffn", c.ffn}, {"experts", c.n_experts}, {"k", c.k_used}, {"gap_us", c.gap_us}, {"threads", plan[0].pus.size()},
                          {"isa", experts::cpu_isa_name(experts::selected_cpu_isa())},
                          {"read_gb_per_s", bandwidth}, {"layers", c.layers}, {"results", nlohmann::json::array()}};
    for (const auto& r : results)
      out["results"].push_back({{"tokens", r.tokens}, {"ms_per_forward", r.seconds_per_forward * 1e3},
                                {"weight_gb_per_s", r.weight_gb_per_s},
                                {"fraction_of_bandwidth", bandwidth > 0 ? r.weight_gb_per_s / bandwidth : 0.0}});
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_moe_engine: %s\n", e.what());
    return 1;
  }
}
