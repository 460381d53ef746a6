// tandem tune's search on recorded machine portraits (1, 2 and 4 NUMA nodes; 0, 1 and 2 GPUs,
// tests/unit/placement/portraits): every candidate it writes parses back to the same plan, fits
// its budget on that machine, and the hot candidate holds the experts the statistics saw most.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "placement/expert_stats.h"
#include "placement/machine_portrait.h"
#include "placement/memory_budget.h"
#include "placement/plan_builder.h"
#include "placement/rules.h"
#include "placement/tuning.h"
#include "runtime/core/error.h"

using namespace tandem;
using namespace tandem::placement;

namespace {

constexpr uint64_t MiB = 1ull << 20;
constexpr int64_t kLayers = 6, kExperts = 32, kUsed = 8;

// A V3-shaped slice: layer 0 dense, then MoE layers of 32 experts x 30 MiB.
ModelLayout slice() {
  ModelLayout m;
  m.n_layer = kLayers, m.n_expert = kExperts, m.kv_lora_rank = 512, m.qk_rope = 64;
  m.tensors.push_back({"token_embd.weight", 100 * MiB});
  m.tensors.push_back({"output.weight", 100 * MiB});
  m.tensors.push_back({"output_norm.weight", 4096});
  for (int64_t l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    m.tensors.push_back({p + "attn_kv_a_mqa.weight", 50 * MiB});
    m.tensors.push_back({p + "attn_norm.weight", 4096});
    if (l == 0) {
      for (const char* t : {"ffn_gate", "ffn_up", "ffn_down"}) m.tensors.push_back({p + t + ".weight", 20 * MiB});
      continue;
    }
    m.tensors.push_back({p + "ffn_gate_inp.weight", 1 * MiB});
    for (const char* t : {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"}) m.tensors.push_back({p + t + ".weight", 10 * MiB});
    for (const char* t : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      m.tensors.push_back({p + t + ".weight", uint64_t(kExperts) * 10 * MiB});
  }
  return m;
}

bool is_hot(int64_t l, int64_t e) { return (e * 7 + l) % kExperts < 8; }

ExpertStats skewed_stats() {
  ExpertStats s;
  s.model = "slice", s.n_layer = kLayers, s.n_expert = kExperts, s.n_expert_used = kUsed;
  for (int64_t l = 1; l < kLayers; ++l) {
    LayerExpertCounts c;
    c.layer = l;
    for (int64_t e = 0; e < kExperts; ++e) {
      c.prefill.push_back(is_hot(l, e) ? 900 + uint64_t(e) : 10);
      c.decode.push_back(is_hot(l, e) ? 100 : 1);
    }
    s.layers.push_back(c);
  }
  return s;
}

std::string fixture(const std::string& name) { return std::string(TANDEM_PORTRAITS_DIR) + "/" + name; }

TuneInputs inputs(const std::string& portrait, bool stats, std::optional<uint64_t> budget) {
  TuneInputs in;
  in.model = slice();
  in.n_expert_used = kUsed;
  in.expert_params_per_byte = 256.0 / 144.0;
  in.portrait = read_portrait_file(fixture(portrait));
  if (stats) in.stats = skewed_stats();
  in.gpu_budget_bytes = budget;
  in.context = 4096;
  return in;
}

std::vector<std::vector<bool>> gpu_masks(const PlacementPlan& p) {
  std::vector<std::vector<bool>> out;
  for (const LayerPlacement& l : p.layers) {
    std::vector<bool> m;
    for (const Device& d : l.experts) m.push_back(d.is_gpu());
    out.push_back(m);
  }
  return out;
}

struct Case {
  const char* portrait;
  bool stats;
};

class TuneOnPortrait : public ::testing::TestWithParam<Case> {};

TEST_P(TuneOnPortrait, WrittenPlansParseBackAndFitTheirBudget) {
  const Case c = GetParam();
  const TuneInputs in = inputs(c.portrait, c.stats, 3ull << 30);
  const Topology topo = tune_topology(in);
  const std::vector<Candidate> cands = tune_candidates(in);
  ASSERT_FALSE(cands.empty());
  EXPECT_EQ(cands.front().name, "automatic");
  int fitting = 0;
  for (const Candidate& cand : cands) {
    if (!cand.fits) continue;
    ++fitting;
    const std::string text = rules_from_plan(cand.plan, {"test candidate " + cand.name}, cand.replicate);
    const Rules r = parse_rules_text(text, "written.yaml");
    PlanOptions po;
    po.context = in.context;
    const PlacementPlan back = make_plan(in.model, topo, &r, po);
    EXPECT_EQ(gpu_masks(back), gpu_masks(cand.plan)) << cand.name << "\n" << text;
    const MemoryBudget b = plan_budget(back, in.model, topo, po);
    EXPECT_TRUE(b.fits()) << cand.name << ": " << (b.problems.empty() ? "" : b.problems.front()) << "\n" << text;
    if (!topo.gpus.empty()) {
      EXPECT_LE(b.gpu_total[0], 3ull << 30) << cand.name;
    }
    EXPECT_GT(cand.predicted.decode_tokens_per_s, 0) << cand.name;
    EXPECT_GT(cand.predicted.prefill_tokens_per_s, 0) << cand.name;
    if (cand.replicate) {
      EXPECT_NE(text.find("cpu:replicate"), std::string::npos);
    }
  }
  EXPECT_GE(fitting, 1);
  if (in.portrait.gpus.empty()) {
    for (const Candidate& cand : cands) EXPECT_EQ(cand.gpu_experts, 0) << cand.name;
  } else {
    const int64_t room = gpu_expert_room(in);
    EXPECT_GT(room, 0);
    EXPECT_LT(room, (kLayers - 1) * kExperts);  // the budget holds only part of the experts
    bool saw_even = false;
    for (const Candidate& cand : cands)
      if (cand.name == "even spread") {
        saw_even = true;
        EXPECT_EQ(cand.gpu_experts, room);
      }
    EXPECT_TRUE(saw_even);
  }
}

INSTANTIATE_TEST_SUITE_P(Portraits, TuneOnPortrait,
                         ::testing::Values(Case{"numa1-gpu0.json", false}, Case{"numa1-gpu1.json", true},
                                           Case{"numa2-gpu1.json", true}, Case{"numa2-gpu2.json", false},
                                           Case{"numa4-gpu0.json", true}, Case{"numa4-gpu2.json", true}));

TEST(Tune, HotCandidateHoldsTheMostRoutedExpertsAndBeatsTheEvenSpread) {
  const TuneInputs in = inputs("numa1-gpu1.json", true, 3ull << 30);
  const std::vector<Candidate> cands = tune_candidates(in);
  const Candidate *hot = nullptr, *even = nullptr;
  for (const Candidate& c : cands) {
    if (c.name == "hot experts" && !c.reserved_cores && !hot) hot = &c;
    if (c.name == "even spread" && !c.reserved_cores && !even) even = &c;
  }
  ASSERT_TRUE(hot && even);
  const int64_t room = gpu_expert_room(in);
  ASSERT_LT(room, 5 * 8);  // fewer than the hot ones: every GPU expert must be a hot one
  int64_t on_gpu = 0;
  for (size_t l = 0; l < hot->plan.layers.size(); ++l)
    for (size_t e = 0; e < hot->plan.layers[l].experts.size(); ++e)
      if (hot->plan.layers[l].experts[e].is_gpu()) {
        ++on_gpu;
        EXPECT_TRUE(is_hot(int64_t(l), int64_t(e))) << "layer " << l << " expert " << e;
      }
  EXPECT_EQ(on_gpu, room);
  EXPECT_GT(hot->predicted.gpu_expert_hit_rate, even->predicted.gpu_expert_hit_rate);
  EXPECT_GT(hot->predicted.decode_tokens_per_s, even->predicted.decode_tokens_per_s);
}

TEST(Tune, StatisticsOfAnotherModelAreAnError) {
  TuneInputs in = inputs("numa1-gpu1.json", true, std::nullopt);
  in.stats->n_expert = 64;
  try {
    (void)tune_candidates(in);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64 experts"), std::string::npos) << e.what();
  }
}

TEST(Tune, SkewedRatesCountTokensNotPicks) {
  const ExpertStats s = skewed_stats();
  const std::vector<double> r = s.hit_rates(1);
  double sum = 0;
  for (double x : r) sum += x;
  EXPECT_NEAR(sum, double(kUsed), 1e-9);  // every token picks n_used experts
  const std::vector<double> uniform = s.hit_rates(0);  // dense layer: no counts
  EXPECT_DOUBLE_EQ(uniform[0], double(kUsed) / kExperts);
}

}  // namespace
