// load_model reports its progress: bytes never decrease, the last call is the model's tensor
// bytes with finished set, on the CPU path and the GPU path (lavapipe in CI).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/engine/model_loader.h"
#include "runtime/gpu/gpu_device.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

const std::string& small_model() {
  static const std::string path = [] {
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v2");
    o.layers = 3;
    o.n_dense = 1;
    o.seed = 11;
    const fs::path dir = fs::path(TANDEM_BINARY_DIR) / "generated-models";
    fs::create_directories(dir);
    return modelgen::generate_deepseek2(o, (dir / "load-progress.gguf").string()).paths.at(0);
  }();
  return path;
}

uint64_t tensor_bytes(const std::string& path) {
  uint64_t n = 0;
  const auto file = GgufFile::open(path);  // the range below must not outlive it
  for (const auto& t : file->tensors()) n += t.nbytes;
  return n;
}

struct Calls {
  std::vector<LoadProgress> calls;
  std::vector<std::string> phases;
};

Calls load_with_progress(ComputePath path, const std::vector<std::vector<uint8_t>>& gpu_experts = {}) {
  Calls c;
  ModelLoadOptions lo;
  lo.path = path;
  lo.max_context = 64;
  lo.gpu_experts = gpu_experts;
  lo.progress = [&](const LoadProgress& p) {
    c.calls.push_back(p);
    if (c.phases.empty() || c.phases.back() != p.phase) c.phases.emplace_back(p.phase);
  };
  LoadedModel m = load_model(small_model(), lo);
  EXPECT_NE(m.lm, nullptr);
  return c;
}

void expect_monotonic_to_total(const Calls& c, uint64_t total) {
  ASSERT_GE(c.calls.size(), 2u);
  EXPECT_EQ(c.calls.front().done, 0u);
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(c.calls[i].total, total);
    EXPECT_EQ(c.calls[i].finished, i + 1 == c.calls.size());
    if (i > 0) {
      EXPECT_LE(c.calls[i - 1].done, c.calls[i].done) << "call " << i << " (" << c.calls[i].phase << ")";
    }
  }
  EXPECT_EQ(c.calls.back().done, total);
}

bool has_phase(const Calls& c, const std::string& prefix) {
  for (const auto& p : c.phases)
    if (p.rfind(prefix, 0) == 0) return true;
  return false;
}

TEST(LoadProgress, CpuPath) {
  const Calls c = load_with_progress(ComputePath::Cpu);
  expect_monotonic_to_total(c, tensor_bytes(small_model()));
  EXPECT_EQ(c.phases.front(), "mapping");
  EXPECT_TRUE(has_phase(c, "repacking experts") || has_phase(c, "mapping experts") ||
              has_phase(c, "copying experts"));
}

TEST(LoadProgress, ReferencePathStillEndsAtTotal) {
  expect_monotonic_to_total(load_with_progress(ComputePath::Reference), tensor_bytes(small_model()));
}

TEST(LoadProgress, GpuPath) {
  if (gpu::GpuDevice::list().empty()) GTEST_SKIP() << "no Vulkan device";
  const Calls c = load_with_progress(ComputePath::Gpu);
  expect_monotonic_to_total(c, tensor_bytes(small_model()));
  EXPECT_TRUE(has_phase(c, "uploading to GPU"));
  // Most bytes are reported by the steps themselves, not filled in at the end.
  EXPECT_GT(c.calls[c.calls.size() - 2].done, tensor_bytes(small_model()) / 2);
}

TEST(LoadProgress, GpuPathWithGpuExperts) {
  if (gpu::GpuDevice::list().empty()) GTEST_SKIP() << "no Vulkan device";
  const auto file = GgufFile::open(small_model());
  const int64_t n_expert = int64_t(file->get_uint("deepseek2.expert_count"));
  ASSERT_GT(n_expert, 1);
  std::vector<std::vector<uint8_t>> on_gpu(3);
  for (size_t l = 1; l < 3; ++l) {
    on_gpu[l].assign(size_t(n_expert), 0);
    on_gpu[l][0] = 1;  // expert 0 of each MoE layer on the GPU, the rest on the CPU engine
  }
  const Calls c = load_with_progress(ComputePath::Gpu, on_gpu);
  expect_monotonic_to_total(c, tensor_bytes(small_model()));
}

}  // namespace
}  // namespace tandem
