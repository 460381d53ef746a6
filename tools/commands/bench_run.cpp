// tandem bench run: whole-model throughput with llama-bench's test names and meaning, so lines
// from both tools compare directly: "pp N" is a prompt of N tokens from an empty cache (one
// forward pass), "tg N" is N tokens generated one at a time from an empty cache. Tokens are
// random ids (the speed does not depend on them); each test runs once unmeasured, then -r times.
// With --parallel N (a list), N sequences run together on one BatchedLm (continuous batching):
// "pp P x N" prefills N prompts of P tokens in one batched forward, "tg G x N" then decodes G
// passes of one token per sequence; both aggregate tokens per second (per sequence: / N).
// --profile adds one more run per test with kernel timestamps on (they cost time per dispatch,
// so the measured runs stay without) and prints the per-kernel GPU time of its last step: the
// prompt's last forward for pp N, the last single-token step for tg N.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/engine/placement_options.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "tools/command_registry.h"
#include "tools/commands/model_speed.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

struct BenchRunOptions {
  std::string model;
  std::vector<int> prompt{512};
  std::vector<int> generate{128};
  int repetitions = 3;
  int gpu = -1;
  bool cpu_only = false;
  int threads = 0;
  bool json = false;
  bool profile = false;
  std::string rules;
  std::vector<int> parallel;  // sequences decoded together (empty: the single-sequence tests)
};

struct TestResult {
  std::string test;
  std::vector<double> tokens_per_s;
  int sequences = 1;  // --parallel N: aggregate over N sequences
};

double run_prompt(CausalLm& lm, int n, uint32_t seed) { return prompt_tokens_per_s(lm, n, seed); }
double run_generate(CausalLm& lm, int n, uint32_t seed) { return generate_tokens_per_s(lm, n, seed); }

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

// One more run of a test with timestamps on; the kernel table of its last step goes to stderr.
void profile_test(CausalLm& lm, const std::string& test, const std::function<void()>& run_once) {
  auto* hybrid = dynamic_cast<Deepseek2Hybrid*>(&lm);
  if (!hybrid) {
    std::fprintf(stderr, "profile %s: no GPU kernels on this path\n", test.c_str());
    return;
  }
  hybrid->set_profile(true);
  run_once();
  std::fprintf(stderr, "profile %s, last step: %s", test.c_str(), hybrid->profile_report().c_str());
  hybrid->set_profile(false);
}

void run_bench_run(const BenchRunOptions& o) {
  if (o.repetitions <= 0) fail("-r must be positive");
  if (o.gpu >= 0 && o.cpu_only) fail("--gpu and --cpu-only exclude each other");
  for (int n : o.prompt)
    if (n <= 0) fail("-p ", n, ": prompt lengths must be positive");
  for (int n : o.generate)
    if (n <= 0) fail("-n ", n, ": generation lengths must be positive");
  int max_tokens = 1, max_seq = 1;
  for (int n : o.prompt) max_tokens = std::max(max_tokens, n);
  for (int n : o.generate) max_tokens = std::max(max_tokens, n);
  for (int n : o.parallel) {
    if (n <= 0 || n > 256) fail("--parallel ", n, ": sequences must be 1 to 256");
    max_seq = std::max(max_seq, n);
  }
  if (!o.parallel.empty()) max_tokens = o.prompt.front() + *std::max_element(o.generate.begin(), o.generate.end());
  ModelLoadOptions lo;
  lo.path = o.gpu >= 0 ? ComputePath::Gpu : ComputePath::Cpu;
  if (o.gpu >= 0) lo.gpu_index = uint32_t(o.gpu);
  lo.threads = o.threads;
  lo.max_context = uint32_t(max_tokens + 1);
  lo.sequences = max_seq;
  const RulesPlan plan = apply_rules_option(o.rules, o.gpu >= 0 || o.cpu_only, o.model, lo);
  lo.progress = announce_load(o.model, plan);
  LoadedModel m = load_model(o.model, lo);
  std::fprintf(stderr, "%s\n", m.description.c_str());

  std::vector<TestResult> results;
  uint32_t seed = 1;
  if (!o.parallel.empty()) {
    if (!m.batched) fail("this compute path keeps one sequence only");
    const int p = o.prompt.front();
    for (int n_seq : o.parallel)
      for (int g : o.generate) {
        const std::string x = " x" + std::to_string(n_seq);
        TestResult pp{"pp" + std::to_string(p) + x, {}, n_seq}, tg{"tg" + std::to_string(g) + x, {}, n_seq};
        parallel_tokens_per_s(*m.batched, n_seq, p, std::min(g, 8), seed++);  // warm-up: records the passes
        for (int i = 0; i < o.repetitions; ++i) {
          const ParallelSpeed r = parallel_tokens_per_s(*m.batched, n_seq, p, g, seed++);
          pp.tokens_per_s.push_back(r.prompt_tokens_per_s);
          tg.tokens_per_s.push_back(r.generate_tokens_per_s);
        }
        if (o.profile)
          profile_test(*m.lm, tg.test, [&] { parallel_tokens_per_s(*m.batched, n_seq, p, 2, seed++); });
        results.push_back(std::move(pp));
        results.push_back(std::move(tg));
      }
  }
  for (int n : o.parallel.empty() ? o.prompt : std::vector<int>{}) {
    TestResult r{"pp" + std::to_string(n), {}};
    run_prompt(*m.lm, n, seed++);  // warm-up: records the GPU steps, faults the weights in
    for (int i = 0; i < o.repetitions; ++i) r.tokens_per_s.push_back(run_prompt(*m.lm, n, seed++));
    if (o.profile) profile_test(*m.lm, r.test, [&] { run_prompt(*m.lm, n, seed++); });
    results.push_back(std::move(r));
  }
  for (int n : o.parallel.empty() ? o.generate : std::vector<int>{}) {
    TestResult r{"tg" + std::to_string(n), {}};
    run_generate(*m.lm, std::min(n, 8), seed++);
    for (int i = 0; i < o.repetitions; ++i) r.tokens_per_s.push_back(run_generate(*m.lm, n, seed++));
    if (o.profile) profile_test(*m.lm, r.test, [&] { run_generate(*m.lm, n, seed++); });
    results.push_back(std::move(r));
  }
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : results) {
      nlohmann::json rec = {{"test", r.test},
                            {"tokens_per_s", mean(r.tokens_per_s)},
                            {"stddev", stddev(r.tokens_per_s)},
                            {"samples", r.tokens_per_s}};
      if (!o.parallel.empty()) {
        rec["sequences"] = r.sequences;
        rec["per_sequence_tokens_per_s"] = mean(r.tokens_per_s) / r.sequences;
      }
      out.push_back(std::move(rec));
    }
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  if (!o.parallel.empty()) {
    std::printf("| %-12s | %12s | %8s | %12s |\n|--------------|--------------|----------|--------------|\n", "test",
                "t/s", "stddev", "t/s per seq");
    for (const auto& r : results)
      std::printf("| %-12s | %12.2f | %8.2f | %12.2f |\n", r.test.c_str(), mean(r.tokens_per_s),
                  stddev(r.tokens_per_s), mean(r.tokens_per_s) / r.sequences);
    return;
  }
  std::printf("| %-8s | %12s | %8s |\n|----------|--------------|----------|\n", "test", "t/s", "stddev");
  for (const auto& r : results)
    std::printf("| %-8s | %12.2f | %8.2f |\n", r.test.c_str(), mean(r.tokens_per_s), stddev(r.tokens_per_s));
}

}  // namespace

void setup_bench_run(CLI::App& bench) {
  auto o = std::make_shared<BenchRunOptions>();
  auto* cmd = bench.add_subcommand("run", "Whole-model prompt (pp N) and generation (tg N) speed, llama-bench style");
  cmd->add_option("--model,-m", o->model, "GGUF model (first shard of a split model)")->required();
  cmd->add_option("-p,--n-prompt", o->prompt, "Prompt lengths, e.g. 512,4096")->delimiter(',')->capture_default_str();
  cmd->add_option("-n,--n-gen", o->generate, "Generation lengths")->delimiter(',')->capture_default_str();
  cmd->add_option("-r,--repetitions", o->repetitions, "Measured runs per test")->capture_default_str();
  cmd->add_option("--rules", o->rules, "Placement rules (YAML, see rules/README.md): where each layer, tensor and expert runs");
  cmd->add_option("--gpu", o->gpu, "Vulkan device for attention and dense layers (rules/default-1gpu.yaml on that device; default: the automatic plan)");
  cmd->add_flag("--cpu-only", o->cpu_only, "Keep all work on the CPU (rules/cpu-only.yaml)");
  cmd->add_option("--threads,-t", o->threads, "Expert threads per NUMA node (0: every core)")->capture_default_str();
  cmd->add_option("--parallel", o->parallel,
                  "Sequences decoded together, e.g. 1,2,4,8: pp P xN (N prompts of the first -p) and tg G xN, "
                  "aggregate t/s")
      ->delimiter(',');
  cmd->add_flag("--json", o->json,
                "Print JSON records {test, tokens_per_s, stddev, samples} (--parallel adds sequences, "
                "per_sequence_tokens_per_s)");
  cmd->add_flag("--profile", o->profile,
                "After each test, one more run with kernel timestamps; its last step's per-kernel GPU times go to stderr");
  cmd->callback([o] { run_bench_run(*o); });
}

}  // namespace tandem::tools
