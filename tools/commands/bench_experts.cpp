// tandem bench experts: MoeEngine::forward throughput on a synthetic layer (tokens/s, GB/s of
// expert weights streamed, and that as a fraction of the measured local read bandwidth).
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "experts/memory_bandwidth.h"
#include "experts/moe_throughput.h"
#include "runtime/core/error.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

struct ExpertBenchArgs {
  std::string type = "Q4_K";
  int64_t hidden = 7168, ffn = 2048, experts = 8;
  int k_used = 8;
  std::vector<int64_t> tokens = {1, 4, 64, 512};
  int threads_per_node = 0;
  int nodes = 0;
  std::string isa;
  double seconds = 1.0;
  int layers = 1;
  bool copy_weights = false;
  int64_t bandwidth_mb = 256;
  bool json = false;
};

void run_bench_experts(const ExpertBenchArgs& a) {
  experts::MoeBenchConfig c;
  const auto type = ggml_type_from_name(a.type);
  if (!type) tandem::fail("--type ", a.type, ": unknown ggml type");
  c.type = *type;
  c.hidden = a.hidden, c.ffn = a.ffn, c.n_experts = a.experts, c.k_used = a.k_used;
  c.token_counts = a.tokens, c.min_seconds = a.seconds, c.layers = a.layers;
  MoeEngineOptions o;
  o.threads_per_node = a.threads_per_node;
  o.max_nodes = a.nodes;
  o.copy_weights = a.copy_weights;
  if (!a.isa.empty()) {
    o.isa = experts::cpu_isa_from_name(a.isa);
    if (!o.isa) tandem::fail("--isa ", a.isa, ": expected scalar, avx2 or avx512");
  }
  // Reference bandwidth: every planned node reading its own memory with its pool's threads.
  double bandwidth = 0;
  int threads = 0;
  auto plan = experts::plan_node_pools(experts::read_cpu_topology(), a.threads_per_node);
  if (a.nodes > 0 && size_t(a.nodes) < plan.size()) plan.resize(size_t(a.nodes));
  for (const auto& node : plan) {
    bandwidth += experts::measure_read_bandwidth(node, node.node, int(node.pus.size()), size_t(a.bandwidth_mb) << 20, 3).gb_per_s;
    threads += int(node.pus.size());
  }
  const auto isa = o.isa ? *o.isa : experts::selected_cpu_isa();
  const auto results = experts::run_moe_bench(o, c);
  if (a.json) {
    nlohmann::json out = {{"type", ggml_type_name(c.type)}, {"hidden", c.hidden}, {"ffn", c.ffn},
                          {"experts", c.n_experts}, {"k_used", c.k_used}, {"isa", experts::cpu_isa_name(isa)},
                          {"threads", threads}, {"nodes", plan.size()}, {"read_gb_per_s", bandwidth},
                          {"layers", c.layers}, {"copy_weights", a.copy_weights},
                          {"results", nlohmann::json::array()}};
    for (const auto& r : results)
      out["results"].push_back({{"tokens", r.tokens}, {"active_experts", r.active_experts},
                                {"ms_per_forward", r.seconds_per_forward * 1e3}, {"tokens_per_s", r.tokens_per_s},
                                {"weight_gb_per_s", r.weight_gb_per_s},
                                {"fraction_of_bandwidth", r.weight_gb_per_s / bandwidth}});
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%s experts: hidden %lld, ffn %lld, %lld experts, k=%d; %s, %d threads on %zu node(s); "
              "measured read bandwidth %.1f GB/s\n",
              std::string(ggml_type_name(c.type)).c_str(), (long long)c.hidden, (long long)c.ffn,
              (long long)c.n_experts, c.k_used, std::string(experts::cpu_isa_name(isa)).c_str(), threads, plan.size(),
              bandwidth);
  std::printf("%8s %8s %12s %12s %12s %10s\n", "tokens", "experts", "ms/forward", "tokens/s", "weight GB/s", "of bw");
  for (const auto& r : results)
    std::printf("%8lld %8lld %12.3f %12.1f %12.2f %9.0f%%\n", (long long)r.tokens, (long long)r.active_experts,
                r.seconds_per_forward * 1e3, r.tokens_per_s, r.weight_gb_per_s, 100.0 * r.weight_gb_per_s / bandwidth);
}

}  // namespace

void setup_bench_experts(CLI::App& bench) {
  auto args = std::make_shared<ExpertBenchArgs>();
  CLI::App* cmd = bench.add_subcommand("experts", "MoE expert engine throughput on a synthetic layer");
  cmd->add_option("--type", args->type, "Weight type of gate, up and down (Q4_K, Q6_K, Q8_0, BF16, ...)")
      ->capture_default_str();
  cmd->add_option("--hidden", args->hidden, "Model width (gate/up row length)")->capture_default_str();
  cmd->add_option("--ffn", args->ffn, "Expert width (down row length)")->capture_default_str();
  cmd->add_option("--experts", args->experts, "Experts in the layer")->capture_default_str();
  cmd->add_option("--k", args->k_used, "Experts per token (capped at --experts)")->capture_default_str();
  cmd->add_option("--tokens", args->tokens, "Token counts to time, e.g. 1,4,64,512")->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--threads-per-node", args->threads_per_node, "0: every core")->capture_default_str();
  cmd->add_option("--nodes", args->nodes, "NUMA nodes to use (0: all)")->capture_default_str();
  cmd->add_option("--isa", args->isa, "Force scalar, avx2 or avx512 (default: best, or TANDEM_CPU_ISA)");
  cmd->add_option("--seconds", args->seconds, "Minimum timed seconds per token count")->capture_default_str();
  cmd->add_option("--layers", args->layers, "Layers of random weights the forwards rotate over (more than the "
                  "last-level cache holds measures DRAM)")->capture_default_str();
  cmd->add_flag("--copy-weights", args->copy_weights, "Engine copies the experts into its own huge-page memory");
  cmd->add_option("--bw-mb", args->bandwidth_mb, "Buffer of the reference bandwidth probe, MB")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON instead of a table");
  cmd->callback([args] { run_bench_experts(*args); });
}

}  // namespace tandem::tools
