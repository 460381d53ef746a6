// plan_execution: what the engine runs for a plan, and the plans it refuses (naming the part).
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/error.h"
#include "runtime/engine/plan_execution.h"

namespace tandem {
namespace {

using placement::Device;

// 3 layers (layer 0 dense), 4 experts; everything on `home`, routed experts on the CPU.
placement::PlacementPlan uniform(Device home) {
  placement::PlacementPlan p;
  p.token_embd = p.output = home;
  p.layers.resize(3);
  for (size_t l = 0; l < 3; ++l) {
    auto& L = p.layers[l];
    L.attention = L.dense_ffn = L.router = L.shared_experts = home;
    if (l > 0) L.experts.assign(4, Device::cpu());
  }
  return p;
}

std::string refusal(const placement::PlacementPlan& p) {
  try {
    plan_execution(p, 3, 1, 4);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PlanExecution, CpuOnlyPlanRunsTheCpuPass) {
  const PlanExecution ex = plan_execution(uniform(Device::cpu()), 3, 1, 4);
  EXPECT_FALSE(ex.uses_gpu);
}

TEST(PlanExecution, MixedPlanGivesEachPartItsDevice) {
  placement::PlacementPlan p = uniform(Device::gpu(0));
  p.layers[1].attention = Device::cpu();        // CPU attention between GPU layers
  p.layers[0].dense_ffn = Device::cpu();        // a dense FFN on the CPU
  p.layers[2].attention = p.layers[2].router = p.layers[2].shared_experts = Device::gpu(1);
  p.layers[2].experts[3] = Device::gpu(1);      // an expert on its layer's GPU
  p.output = Device::gpu(1);
  const PlanExecution ex = plan_execution(p, 3, 1, 4);
  EXPECT_TRUE(ex.uses_gpu);
  EXPECT_EQ(ex.gpu_index, 0u);
  EXPECT_EQ(ex.attention_device, (std::vector<int>{0, PlanExecution::kCpu, 1}));
  EXPECT_EQ(ex.ffn_device, (std::vector<int>{PlanExecution::kCpu, 0, 1}));
  EXPECT_EQ(ex.output_device, 1);
  EXPECT_EQ(ex.gpu_experts[2], (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(ex.cpu_expert_nodes[2][3], PlanExecution::kNotOnCpu);
  EXPECT_EQ(ex.cpu_expert_nodes[2][0], Device::kAllNodes);
}

TEST(PlanExecution, RefusesWhatNoPassRuns) {
  placement::PlacementPlan split = uniform(Device::gpu(0));
  split.layers[1].shared_experts = Device::cpu();
  EXPECT_NE(refusal(split).find("layer 1 router is on gpu:0 but its shared experts on cpu"), std::string::npos)
      << refusal(split);
  placement::PlacementPlan other_gpu = uniform(Device::gpu(0));
  other_gpu.layers[2].experts[0] = Device::gpu(1);
  EXPECT_NE(refusal(other_gpu).find("layer 2 expert 0 is on gpu:1"), std::string::npos) << refusal(other_gpu);
  placement::PlacementPlan cpu_router = uniform(Device::gpu(0));
  cpu_router.layers[1].router = cpu_router.layers[1].shared_experts = Device::cpu();
  cpu_router.layers[1].experts[1] = Device::gpu(0);
  EXPECT_NE(refusal(cpu_router).find("layer 1 expert 1 is on gpu:0"), std::string::npos) << refusal(cpu_router);
  placement::PlacementPlan dense_experts = uniform(Device::gpu(0));
  dense_experts.layers[0].experts.assign(4, Device::cpu());
  EXPECT_NE(refusal(dense_experts).find("layer 0 is dense"), std::string::npos);
}

}  // namespace
}  // namespace tandem
