// tandem tune's prediction model fed a recorded device run (issue 12): the portrait of a 16-core
// H200 box (portraits/h200-16c-vm.json) and a V3 slice of 3 MoE layers x 256 experts profiled
// over only ~600 tokens. With so few samples the GPU room covers every expert ever seen; the
// model must not take that as a 100% hit rate, GPU experts must cost time, and prefill must stay
// bounded. Measured figures of that run calibrate the model as the tuner does.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <tuple>

#include "placement/expert_stats.h"
#include "placement/machine_portrait.h"
#include "placement/tuning.h"

using namespace tandem;
using namespace tandem::placement;

namespace {

constexpr uint64_t MB = 1000ull * 1000;
constexpr int64_t kLayers = 6, kExperts = 256, kUsed = 8;

// DeepSeek-V3-shaped slice: layers 0-2 dense, 3-5 MoE with 256 experts of 24.8 MB (q4_K).
ModelLayout v3_slice() {
  ModelLayout m;
  m.n_layer = kLayers, m.n_expert = kExperts, m.kv_lora_rank = 512, m.qk_rope = 64;
  m.tensors.push_back({"token_embd.weight", 520 * MB});
  m.tensors.push_back({"output.weight", 520 * MB});
  m.tensors.push_back({"output_norm.weight", 28672});
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    m.tensors.push_back({p + "attn_kv_a_mqa.weight", 100 * MB});
    m.tensors.push_back({p + "attn_norm.weight", 28672});
    if (l < 3) {
      for (const char* t : {"ffn_gate", "ffn_up", "ffn_down"}) m.tensors.push_back({p + t + ".weight", 74 * MB});
      continue;
    }
    m.tensors.push_back({p + "ffn_gate_inp.weight", 7 * MB});
    for (const char* t : {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"}) m.tensors.push_back({p + t + ".weight", 8 * MB});
    for (const char* t : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      m.tensors.push_back({p + t + ".weight", uint64_t(kExperts) * 8267 * 1000});
  }
  return m;
}

// Few samples of a skewed router: 16 hot experts per layer take ~70% of the picks (as the
// recorded run's profile said), each token picks 8 distinct experts.
ExpertStats few_sample_stats(uint64_t tokens) {
  ExpertStats s;
  s.model = "v3 slice", s.n_layer = kLayers, s.n_expert = kExperts, s.n_expert_used = kUsed;
  s.prompts = 6, s.prefill_tokens = tokens * 5 / 6, s.decode_tokens = tokens - s.prefill_tokens;
  std::mt19937 rng(12);
  for (int64_t l = 3; l < kLayers; ++l) {
    std::vector<double> w(kExperts, 1.0);
    // 4 of the hot ones among the even spread's experts 0..79 (it took 27% of the picks there).
    for (int64_t i = 0; i < 16; ++i) w[size_t(i < 4 ? i * 19 + l : 80 + (i * 41 + l * 7) % 176)] = 60;
    std::discrete_distribution<int64_t> pick(w.begin(), w.end());
    LayerExpertCounts c;
    c.layer = l, c.prefill.assign(kExperts, 0), c.decode.assign(kExperts, 0);
    for (uint64_t t = 0; t < tokens; ++t) {
      std::set<int64_t> chosen;
      while (chosen.size() < size_t(kUsed)) chosen.insert(pick(rng));
      for (int64_t e : chosen) ++(t < s.prefill_tokens ? c.prefill : c.decode)[size_t(e)];
    }
    s.layers.push_back(c);
  }
  return s;
}

TuneInputs device_inputs(uint64_t tokens) {
  TuneInputs in;
  in.model = v3_slice();
  in.n_expert_used = kUsed;
  in.expert_params_per_byte = 256.0 / 144.0;
  in.portrait = read_portrait_file(std::string(TANDEM_PORTRAITS_DIR) + "/h200-16c-vm.json");
  in.stats = few_sample_stats(tokens);
  in.gpu_budget_bytes = uint64_t(9.31 * double(1ull << 30));
  in.context = 4096;
  return in;
}

const Candidate& named(const std::vector<Candidate>& c, const std::string& name) {
  for (const Candidate& x : c)
    if (x.name == name && x.reserved_cores == 0 && x.threads_per_node == 0 && !x.replicate) return x;
  ADD_FAILURE() << "no candidate " << name;
  return c.front();
}

bool finite_positive(double x) { return std::isfinite(x) && x > 0; }

}  // namespace

TEST(TuneDevice, SmoothedRatesKeepMassOnUnseenExpertsAndSumToK) {
  const ExpertStats few = few_sample_stats(599), many = few_sample_stats(20000);
  for (const ExpertStats* s : {&few, &many}) {
    const std::vector<double> r = s->smoothed_hit_rates(3);
    EXPECT_NEAR(std::accumulate(r.begin(), r.end(), 0.0), double(kUsed), 1e-6);
    for (double x : r) EXPECT_GT(x, 0);
  }
  // The smoothed shares move toward the raw ones as the sample grows.
  auto gap = [](const ExpertStats& s) {
    const std::vector<double> raw = s.hit_rates(4), sm = s.smoothed_hit_rates(4);
    double d = 0;
    for (size_t e = 0; e < raw.size(); ++e) d += std::abs(raw[e] - sm[e]);
    return d;
  };
  EXPECT_LT(gap(many), gap(few));
  // A layer without counts stays uniform.
  for (double x : few.smoothed_hit_rates(0)) EXPECT_DOUBLE_EQ(x, double(kUsed) / double(kExperts));
}

TEST(TuneDevice, FewSamplesDoNotPredictAPerfectHitRateOrUnboundedSpeed) {
  const TuneInputs in = device_inputs(599);
  ASSERT_GE(gpu_expert_room(in), 200);  // the recorded run had room for 240
  const std::vector<Candidate> c = tune_candidates(in);
  const Candidate &automatic = named(c, "automatic"), &hot = named(c, "hot experts"), &even = named(c, "even spread");
  EXPECT_EQ(automatic.gpu_experts, 0);
  // Every expert the profile saw fits in the room, yet unseen tokens still miss sometimes.
  EXPECT_LT(hot.predicted.gpu_expert_hit_rate, 0.97);
  EXPECT_GT(hot.predicted.gpu_expert_hit_rate, even.predicted.gpu_expert_hit_rate);
  for (const Candidate& x : c) {
    EXPECT_TRUE(finite_positive(x.predicted.decode_tokens_per_s)) << x.name;
    EXPECT_TRUE(finite_positive(x.predicted.prefill_tokens_per_s)) << x.name;
    // The prefill ceiling: of the non-CPU part, no more than 64 decode tokens' worth of batching gain.
    const double rest = x.predicted.decode_seconds - x.predicted.decode_cpu_seconds;
    EXPECT_LE(x.predicted.prefill_tokens_per_s, 64.0001 / rest) << x.name;
    EXPECT_LT(x.predicted.prefill_tokens_per_s, 20000) << x.name;
  }
  // Only the CPU part shrinks (the dense parts stay where they were, GPU experts cost time): a
  // few times the automatic plan at most, not the tenfold of a free GPU.
  EXPECT_LT(hot.predicted.decode_tokens_per_s, 5 * automatic.predicted.decode_tokens_per_s);
  EXPECT_GT(hot.predicted.decode_tokens_per_s, automatic.predicted.decode_tokens_per_s);
  EXPECT_GT(hot.predicted.gpu_bytes_per_token, even.predicted.gpu_bytes_per_token);
}

TEST(TuneDevice, TwoPlanCalibrationReproducesItsPointsAndKeepsOthersBounded) {
  const TuneInputs in = device_inputs(599);
  std::vector<Candidate> c = tune_candidates(in);
  Candidate automatic = named(c, "automatic"), even = named(c, "even spread"), hot = named(c, "hot experts");
  // The recorded measurements of those two plans (tg64 / pp512 tokens/s).
  automatic.measured_decode = 89.52, automatic.measured_prefill = 641.1;
  even.measured_decode = 104.12, even.measured_prefill = 722.5;
  const Calibration cal = fit_calibration({&automatic, &even}, in.prompt_tokens);
  EXPECT_EQ(cal.points, 2);
  EXPECT_GE(cal.decode_fixed_s, 0);
  EXPECT_GE(cal.prefill_fixed_s, 0);
  const Prediction pa = calibrated(automatic.predicted, cal, in.prompt_tokens);
  const Prediction pe = calibrated(even.predicted, cal, in.prompt_tokens);
  const Prediction ph = calibrated(hot.predicted, cal, in.prompt_tokens);
  std::printf("calibration: decode fixed %.3f ms, cpu scale %.3f; prefill fixed %.3f ms/token, cpu scale %.3f\n",
              1e3 * cal.decode_fixed_s, cal.decode_cpu_scale, 1e3 * cal.prefill_fixed_s, cal.prefill_cpu_scale);
  for (const auto& [name, p, raw] : {std::tuple{"automatic", pa, automatic.predicted}, std::tuple{"even spread", pe, even.predicted},
                                     std::tuple{"hot experts", ph, hot.predicted}})
    std::printf("%-12s hit %5.1f%%  raw tg %8.2f pp %9.1f  calibrated tg %8.2f pp %9.1f\n", name, 100 * raw.gpu_expert_hit_rate,
                raw.decode_tokens_per_s, raw.prefill_tokens_per_s, p.decode_tokens_per_s, p.prefill_tokens_per_s);
  // Two parameters through two points: both reproduced (unless a clamp bit).
  EXPECT_NEAR(pa.decode_tokens_per_s, 89.52, 0.05 * 89.52);
  EXPECT_NEAR(pe.decode_tokens_per_s, 104.12, 0.05 * 104.12);
  EXPECT_NEAR(pa.prefill_tokens_per_s, 641.1, 0.05 * 641.1);
  EXPECT_NEAR(pe.prefill_tokens_per_s, 722.5, 0.05 * 722.5);
  // The plan not measured yet: faster than both for decode (the search still picks it), and
  // bounded: no more than a few times the automatic plan.
  EXPECT_GT(ph.decode_tokens_per_s, pe.decode_tokens_per_s);
  EXPECT_LT(ph.decode_tokens_per_s, 4 * 89.52);
  EXPECT_TRUE(finite_positive(ph.prefill_tokens_per_s));
  EXPECT_LT(ph.prefill_tokens_per_s, 3 * 641.1);
}

TEST(TuneDevice, OnePlanCalibrationIsExactOnIt) {
  const TuneInputs in = device_inputs(599);
  Candidate automatic = named(tune_candidates(in), "automatic");
  automatic.measured_decode = 89.52, automatic.measured_prefill = 641.1;
  const Calibration cal = fit_calibration({&automatic}, in.prompt_tokens);
  EXPECT_EQ(cal.points, 1);
  const Prediction p = calibrated(automatic.predicted, cal, in.prompt_tokens);
  EXPECT_NEAR(p.decode_tokens_per_s, 89.52, 1e-6 * 89.52);
  EXPECT_NEAR(p.prefill_tokens_per_s, 641.1, 1e-6 * 641.1);
  // What the tuner predicts for the next plans before measuring them: finite, and hot experts
  // above the even spread.
  const std::vector<Candidate> c = tune_candidates(in);
  const Prediction pe = calibrated(named(c, "even spread").predicted, cal, in.prompt_tokens);
  const Prediction ph = calibrated(named(c, "hot experts").predicted, cal, in.prompt_tokens);
  std::printf("after the automatic plan alone: even spread tg %.2f pp %.1f, hot experts tg %.2f pp %.1f\n",
              pe.decode_tokens_per_s, pe.prefill_tokens_per_s, ph.decode_tokens_per_s, ph.prefill_tokens_per_s);
  EXPECT_TRUE(finite_positive(pe.decode_tokens_per_s) && finite_positive(ph.prefill_tokens_per_s));
  EXPECT_GT(ph.decode_tokens_per_s, pe.decode_tokens_per_s);
}

namespace {

// A machine that behaves exactly like the three-parameter model: fixed + scale x CPU part +
// layer cost x MoE layers with GPU experts + the rest of the raw figure.
struct TrueCosts {
  double fixed, scale, layer;              // decode: seconds per token
  double pf_fixed, pf_scale, pf_layer;     // prefill: seconds per token / factor / seconds per prompt
};
void measure_as(Candidate& c, const TrueCosts& t, int tokens) {
  const Prediction& r = c.predicted;
  const double L = r.gpu_expert_layers, guess = L * r.gpu_layer_seconds;
  const double d = t.fixed + t.scale * r.decode_cpu_seconds + t.layer * L + (r.decode_seconds - r.decode_cpu_seconds - guess);
  const double p = t.pf_fixed * tokens + t.pf_scale * r.prefill_cpu_seconds + t.pf_layer * L +
                   (r.prefill_seconds - r.prefill_cpu_seconds - guess);
  c.measured_decode = 1 / d, c.measured_prefill = tokens / p;
}

}  // namespace

// The per-layer cost of GPU experts is what the two-plan fit could not see (hot experts predicted
// 41% too slow on the device): three plans that differ in CPU part and GPU-expert layers recover
// all three parameters, and a fourth plan is then predicted exactly.
TEST(TuneDevice, ThreePlanCalibrationRecoversTheLayerCostAndPredictsAFourthPlan) {
  const TuneInputs in = device_inputs(599);
  std::vector<Candidate> c = tune_candidates(in);
  Candidate automatic = named(c, "automatic"), even = named(c, "even spread"), layers = named(c, "layers in order"),
            hot = named(c, "hot experts");
  EXPECT_EQ(automatic.predicted.gpu_expert_layers, 0);
  EXPECT_EQ(even.predicted.gpu_expert_layers, 3);
  EXPECT_EQ(layers.predicted.gpu_expert_layers, 1);  // 240 experts of room: part of the first MoE layer
  const TrueCosts truth{2.6e-3, 0.45, 0.6e-3, 0.4e-3, 1.3, 2e-3};
  for (Candidate* x : {&automatic, &even, &layers, &hot}) measure_as(*x, truth, in.prompt_tokens);
  const Calibration cal = fit_calibration({&automatic, &even, &layers}, in.prompt_tokens);
  EXPECT_EQ(cal.points, 3);
  EXPECT_NEAR(cal.decode_fixed_s, truth.fixed, 1e-6);
  EXPECT_NEAR(cal.decode_cpu_scale, truth.scale, 1e-4);
  EXPECT_NEAR(cal.decode_gpu_layer_s, truth.layer, 1e-6);
  EXPECT_NEAR(cal.prefill_fixed_s, truth.pf_fixed, 1e-6);
  EXPECT_NEAR(cal.prefill_gpu_layer_s, truth.pf_layer, 1e-5);
  const Prediction ph = calibrated(hot.predicted, cal, in.prompt_tokens);
  EXPECT_NEAR(ph.decode_tokens_per_s, *hot.measured_decode, 1e-3 * *hot.measured_decode);
  EXPECT_NEAR(ph.prefill_tokens_per_s, *hot.measured_prefill, 1e-3 * *hot.measured_prefill);
  // The two-plan fit on the same machine misses the hot plan, as it did on the device.
  const Calibration two = fit_calibration({&automatic, &even}, in.prompt_tokens);
  EXPECT_EQ(two.decode_gpu_layer_s, -1);
  const Prediction p2 = calibrated(hot.predicted, two, in.prompt_tokens);
  EXPECT_GT(std::abs(p2.decode_tokens_per_s / *hot.measured_decode - 1), 0.2);
}

// Three plans that say the same twice (the same CPU part and layer count) cannot separate the
// layer cost: the fit falls back to the first two and keeps the model's guess.
TEST(TuneDevice, ThreePlanCalibrationFallsBackWhenThePlansAreAlike) {
  const TuneInputs in = device_inputs(599);
  std::vector<Candidate> c = tune_candidates(in);
  Candidate automatic = named(c, "automatic"), even = named(c, "even spread");
  Candidate again = even;
  const TrueCosts truth{2.6e-3, 0.45, 0.6e-3, 0.4e-3, 1.3, 2e-3};
  for (Candidate* x : {&automatic, &even, &again}) measure_as(*x, truth, in.prompt_tokens);
  const Calibration cal = fit_calibration({&automatic, &even, &again}, in.prompt_tokens);
  EXPECT_EQ(cal.points, 3);
  EXPECT_EQ(cal.decode_gpu_layer_s, -1);
  EXPECT_EQ(cal.prefill_gpu_layer_s, -1);
  const Prediction pa = calibrated(automatic.predicted, cal, in.prompt_tokens);
  EXPECT_NEAR(pa.decode_tokens_per_s, *automatic.measured_decode, 0.05 * *automatic.measured_decode);
}
