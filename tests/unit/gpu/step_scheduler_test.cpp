// The step scheduler on a toy program that is no model: CPU steps, GPU steps on two logical
// devices of one physical GPU (TANDEM_GPU_LOGICAL_COPIES=2), routed experts overlapping GPU work;
// the results against the same arithmetic on the host, the submissions it makes, and replay.
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/engine/step_scheduler.h"
#include "runtime/gpu/elementwise.h"

namespace tandem::sched {
namespace {

constexpr int kWidth = 4;  // floats per token

// y = x * factor + the weight of the token's first pick (ids are ignored but checked).
class FakeExperts : public RoutedExperts {
 public:
  void forward(int64_t layer, const float* x, int64_t n, const int32_t* ids, const float* weights, int64_t k,
               float* y) override {
    calls++;
    last_layer = layer;
    for (int64_t t = 0; t < n; ++t) {
      if (ids[t * k] != int32_t(t)) bad_ids = true;
      for (int c = 0; c < kWidth; ++c) y[t * kWidth + c] = x[t * kWidth + c] * 3.0f + weights[t * k];
    }
  }
  int calls = 0;
  int64_t last_layer = -1;
  bool bad_ids = false;
};

bool have_gpu() {
  setenv("XDG_RUNTIME_DIR", "/tmp", 0);
  try {
    return !gpu::GpuDevice::list().empty();
  } catch (const Error&) {
    return false;
  }
}

struct Toy {
  std::unique_ptr<StepScheduler> s;
  std::shared_ptr<FakeExperts> experts = std::make_shared<FakeExperts>();
  ActivationId a, c, out, r, ids, weights;
  int bump_calls = 0;
};

ActivationSpec spec(const char* name, uint64_t per_token_floats, uint32_t max_tokens) {
  ActivationSpec s;
  s.name = name;
  s.bytes_per_token = per_token_floats * 4;
  s.bytes = s.bytes_per_token * max_tokens;
  return s;
}

// r = (3 * (2 * a0) + w) + 0.5 * (2 * a0), with a0[t][c] = t + c + 1 and w[t] = t / 4, then +1 on
// the CPU: GPU 0 doubles, the experts run on the CPU while GPU 0 halves, GPU 1 adds, the CPU bumps.
void build(Toy& toy, int second_gpu, uint32_t max_tokens) {
  std::vector<uint32_t> gpus = {0};
  if (second_gpu != 0) gpus.push_back(uint32_t(second_gpu));
  SchedulerOptions o;
  o.max_tokens = max_tokens;
  toy.s = std::make_unique<StepScheduler>(gpus, toy.experts, o);
  StepScheduler& s = *toy.s;
  toy.a = s.declare(spec("a", kWidth, max_tokens));
  toy.c = s.declare(spec("c", kWidth, max_tokens));
  toy.out = s.declare(spec("experts out", kWidth, max_tokens));
  toy.r = s.declare(spec("r", kWidth, max_tokens));
  toy.ids = s.declare(spec("ids", 1, max_tokens));
  toy.weights = s.declare(spec("weights", 1, max_tokens));
  Program p;
  Step in;
  in.kind = Step::Kind::Cpu;
  in.label = "inputs";
  in.writes = {toy.a, toy.ids, toy.weights};
  in.run = [&toy](const HostBuffers& h, uint32_t n) {
    for (uint32_t t = 0; t < n; ++t) {
      for (int c = 0; c < kWidth; ++c) h.f32(toy.a)[t * kWidth + c] = float(t + c + 1);
      h.i32(toy.ids)[t] = int32_t(t);
      h.f32(toy.weights)[t] = float(t) / 4;
    }
  };
  p.steps.push_back(in);
  Step dbl;
  dbl.kind = Step::Kind::Gpu;
  dbl.label = "double";
  dbl.device = 0;
  dbl.reads = {toy.a};
  dbl.writes = {toy.a};
  dbl.record = [&toy](gpu::CommandSequence& q, uint32_t n) {
    gpu::record_scale(q, toy.s->span(0, toy.a), 2.0f, toy.s->span(0, toy.a), n * kWidth);
  };
  p.steps.push_back(dbl);
  Step ex;
  ex.kind = Step::Kind::RoutedExperts;
  ex.label = "experts";
  ex.device = 0;
  ex.layer = 7;
  ex.k_used = 1;
  ex.x = toy.a;
  ex.ids = toy.ids;
  ex.weights = toy.weights;
  ex.out = toy.out;
  ex.overlap_reads = {toy.a};
  ex.overlap_writes = {toy.c};
  ex.overlap = [&toy](gpu::CommandSequence& q, uint32_t n) {
    gpu::record_scale(q, toy.s->span(0, toy.a), 0.5f, toy.s->span(0, toy.c), n * kWidth);
  };
  p.steps.push_back(ex);
  const int g = second_gpu;
  Step add;
  add.kind = Step::Kind::Gpu;
  add.label = "add";
  add.device = g;
  add.reads = {toy.out, toy.c};
  add.writes = {toy.r};
  add.record = [&toy, g](gpu::CommandSequence& q, uint32_t n) {
    gpu::record_add(q, toy.s->span(g, toy.out), toy.s->span(g, toy.c), toy.s->span(g, toy.r), n * kWidth);
  };
  p.steps.push_back(add);
  Step bump;
  bump.kind = Step::Kind::Cpu;
  bump.label = "bump";
  bump.reads = {toy.r};
  bump.writes = {toy.r};
  bump.run = [&toy](const HostBuffers& h, uint32_t n) {
    toy.bump_calls++;
    for (uint32_t i = 0; i < n * kWidth; ++i) h.f32(toy.r)[i] += 1.0f;
  };
  p.steps.push_back(bump);
  p.result = toy.r;
  s.set_program(std::move(p));
}

void expect_result(const std::vector<float>& r, uint32_t n) {
  for (uint32_t t = 0; t < n; ++t)
    for (int c = 0; c < kWidth; ++c) {
      const float a2 = 2.0f * float(t + c + 1);
      EXPECT_FLOAT_EQ(r[t * kWidth + c], 3.0f * a2 + float(t) / 4 + 0.5f * a2 + 1.0f) << t << "," << c;
    }
}

void run_toy(int second_gpu) {
  Toy toy;
  build(toy, second_gpu, 16);
  for (uint32_t n : {5u, 1u, 5u, 16u}) {  // 5 twice: the second run replays the recording
    std::vector<float> r(n * kWidth, -1.0f);
    toy.s->run(n, r.data());
    expect_result(r, n);
    // The GPU 0 segment, the overlap, the GPU segment of `add`: one submission each.
    EXPECT_EQ(toy.s->last_times().submits, 3u);
  }
  EXPECT_EQ(toy.experts->calls, 4);
  EXPECT_EQ(toy.experts->last_layer, 7);
  EXPECT_FALSE(toy.experts->bad_ids);
  EXPECT_EQ(toy.bump_calls, 4);
}

TEST(StepScheduler, OneGpuCpuStepsAndOverlappedExperts) {
  if (!have_gpu()) GTEST_SKIP() << "no Vulkan device";
  run_toy(0);
}

TEST(StepScheduler, TwoLogicalGpusHandActivationsOver) {
  if (!have_gpu()) GTEST_SKIP() << "no Vulkan device";
  knobs::set("TANDEM_GPU_LOGICAL_COPIES", "2");
  ASSERT_GE(gpu::GpuDevice::list().size(), 2u);
  run_toy(1);
  knobs::unset("TANDEM_GPU_LOGICAL_COPIES");
}

TEST(StepScheduler, RefusesWhatItCannotRun) {
  if (!have_gpu()) GTEST_SKIP() << "no Vulkan device";
  StepScheduler s({0}, nullptr, {});
  Program p;
  Step st;
  st.kind = Step::Kind::RoutedExperts;
  st.label = "experts";
  p.steps.push_back(st);
  EXPECT_THROW(s.set_program(p), Error);  // no expert engine
  Program q;
  Step g;
  g.kind = Step::Kind::Gpu;
  g.device = 3;
  q.steps.push_back(g);
  EXPECT_THROW(s.set_program(q), Error);  // a device it did not open
  EXPECT_THROW(s.run(0, nullptr), Error);
}

}  // namespace
}  // namespace tandem::sched
