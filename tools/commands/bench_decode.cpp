// tandem bench decode: times one decode step of a model on the GPU path at given context
// lengths. The cache is not prefilled (Deepseek2Hybrid::seek): attention reads the same number
// of rows either way, so the time is that of a real step at that length.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/engine/model_loader.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "tools/command_registry.h"

namespace tandem::tools {
namespace {

struct BenchDecodeOptions {
  std::string model;
  int gpu = 0;
  std::vector<int> contexts{512};
  int steps = 10;
  bool profile = false;
};

void run_bench_decode(const BenchDecodeOptions& o) {
  if (o.steps <= 0) fail("--steps must be positive");
  const int max_ctx = *std::max_element(o.contexts.begin(), o.contexts.end());
  if (max_ctx <= 0) fail("--context values must be positive");
  ModelLoadOptions lo;
  lo.path = ComputePath::Gpu;
  lo.gpu_index = uint32_t(o.gpu);
  lo.max_context = uint32_t(max_ctx + o.steps + 1);
  lo.profile = true;  // GPU time per step from timestamps
  LoadedModel m = load_model(o.model, lo);
  auto* hybrid = dynamic_cast<Deepseek2Hybrid*>(m.lm.get());
  if (!hybrid) fail("bench decode needs the deepseek2 GPU path");
  std::printf("%s\ndevice %s, %.1f MiB of GPU memory in use\n", m.description.c_str(), hybrid->device_name().c_str(),
              double(hybrid->device_bytes()) / (1 << 20));
  std::vector<float> logits;
  const int32_t token = 1;
  for (int ctx : o.contexts) {
    hybrid->seek(ctx);
    hybrid->forward({&token, 1}, logits);  // records the decode step (first use)
    std::vector<double> wall, gpu;
    for (int s = 0; s < o.steps; ++s) {
      hybrid->seek(ctx);
      const auto t0 = std::chrono::steady_clock::now();
      hybrid->forward({&token, 1}, logits);
      wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      gpu.push_back(hybrid->last_gpu_milliseconds());
    }
    std::sort(wall.begin(), wall.end());
    std::sort(gpu.begin(), gpu.end());
    std::printf("context %6d: decode step %.3f ms wall, %.3f ms GPU (medians of %d)\n", ctx, wall[wall.size() / 2],
                gpu[gpu.size() / 2], o.steps);
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
  cmd->callback([o] { run_bench_decode(*o); });
}

}  // namespace tandem::tools
