// tandem bench decode: times one decode step of a model on the GPU path at given context
// lengths. The cache is not prefilled (Deepseek2Hybrid::seek): attention reads the same number
// of rows either way, so the time is that of a real step at that length. Wall times are taken
// with kernel timestamps off (they cost time per dispatch); the GPU time comes from a second
// series with them on.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "tools/command_registry.h"
#include "tools/load_progress.h"

namespace tandem::tools {
namespace {

struct BenchDecodeOptions {
  std::string model;
  int gpu = 0;
  std::vector<int> contexts{512};
  int steps = 10;
  bool profile = false;
  int threads = 0;
  int reserved_cores = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Medians over `steps` decode steps at context ctx of what `pick` reads from the step's times.
struct StepSeries {
  std::vector<HybridStepTimes> steps;
  std::vector<double> gpu;
  double med(const std::function<double(const HybridStepTimes&)>& pick) const {
    std::vector<double> v;
    for (const auto& s : steps) v.push_back(pick(s));
    return median(v);
  }
};

StepSeries time_steps(Deepseek2Hybrid& m, int ctx, int steps) {
  std::vector<float> logits;
  const int32_t token = 1;
  m.seek(ctx);
  m.forward({&token, 1}, logits);  // records the decode step (first use)
  StepSeries s;
  for (int i = 0; i < steps; ++i) {
    m.seek(ctx);
    m.forward({&token, 1}, logits);
    s.steps.push_back(m.last_step_times());
    s.gpu.push_back(m.last_gpu_milliseconds());
  }
  return s;
}

void run_bench_decode(const BenchDecodeOptions& o) {
  if (o.steps <= 0) fail("--steps must be positive");
  const int max_ctx = *std::max_element(o.contexts.begin(), o.contexts.end());
  if (max_ctx <= 0) fail("--context values must be positive");
  ModelLoadOptions lo;
  lo.path = ComputePath::Gpu;
  lo.gpu_index = uint32_t(o.gpu);
  lo.max_context = uint32_t(max_ctx + o.steps + 1);
  lo.threads = o.threads;
  lo.reserved_cores = o.reserved_cores;
  lo.profile = false;  // wall times without timestamps; a profiled series follows
  lo.progress = announce_load(o.model, RulesPlan{});  // no plan here: the bar only
  LoadedModel m = load_model(o.model, lo);
  auto* hybrid = dynamic_cast<Deepseek2Hybrid*>(m.lm.get());
  if (!hybrid) fail("bench decode needs the deepseek2 GPU path");
  std::printf("%s\ndevice %s, %.1f MiB of GPU memory in use\n", m.description.c_str(), hybrid->device_name().c_str(),
              double(hybrid->device_bytes()) / (1 << 20));
  for (int ctx : o.contexts) {
    hybrid->set_profile(false);
    const StepSeries plain = time_steps(*hybrid, ctx, o.steps);
    hybrid->set_profile(true);
    const StepSeries timed = time_steps(*hybrid, ctx, o.steps);
    const double wall = plain.med([](const HybridStepTimes& t) { return t.wall_ms; });
    const HybridStepTimes& any = plain.steps.front();
    std::printf("context %6d: decode step %.3f ms wall (%.1f tokens/s), %.3f ms GPU kernels in %u dispatches, "
                "%u submits (medians of %d)\n",
                ctx, wall, 1000.0 / wall, median(timed.gpu), any.dispatches, any.submits, o.steps);
    // Not indented: device_run.sh drops the indented per-kernel lines from its log.
    std::printf("wall split %6d: waiting for the GPU %.3f ms, CPU routed experts %.3f ms, host other %.3f ms; "
                "with timestamps on: %.3f ms wall\n",
                ctx,
                plain.med([](const HybridStepTimes& t) { return t.gpu_wait_ms; }),
                plain.med([](const HybridStepTimes& t) { return t.experts_ms; }),
                plain.med([](const HybridStepTimes& t) { return t.host_ms; }),
                timed.med([](const HybridStepTimes& t) { return t.wall_ms; }));
    if (o.profile) std::printf("%s", hybrid->profile_report().c_str());
  }
}

}  // namespace

void setup_bench_decode(CLI::App& bench) {
  auto o = std::make_shared<BenchDecodeOptions>();
  auto* cmd = bench.add_subcommand("decode", "Time one decode step on the GPU path at given context lengths");
  cmd->add_option("--model", o->model, "GGUF model")->required();
  cmd->add_option("--gpu", o->gpu, "Vulkan device index")->capture_default_str();
  cmd->add_option("--context", o->contexts, "Context lengths (tokens already in the cache)")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Timed steps per context")->capture_default_str();
  cmd->add_flag("--profile", o->profile, "Print per-kernel GPU times of the last step");
  cmd->add_option("--threads", o->threads, "Expert threads per NUMA node (0: every core left)")->capture_default_str();
  cmd->add_option("--reserve-cores", o->reserved_cores,
                  "Cores of the first NUMA node kept free of expert threads")
      ->capture_default_str();
  cmd->callback([o] { run_bench_decode(*o); });
}

}  // namespace tandem::tools
