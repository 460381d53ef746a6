// A full-size DeepSeek-V3 layout (671B, header only: the generator leaves the data as holes)
// planned on a machine it fits, with the byte totals worked out by hand from the shapes.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "experts/cpu_isa.h"
#include "placement/model_layout.h"
#include "placement/plan_builder.h"
#include "placement/plan_report.h"
#include "placement/rules.h"
#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/gguf/gguf_file.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::placement {
namespace {

namespace fs = std::filesystem;

// By hand. Q4_K: 144 bytes per 256 weights; Q6_K: 210 bytes per 256 weights (the generator's
// default types: gate/up Q4_K, down Q6_K). V3: hidden 7168, expert FFN 2048, 256 routed experts,
// 61 layers of which the first 3 are dense, latent KV 512 + rope 64.
constexpr uint64_t kGateOrUp = 7168ull / 256 * 144 * (2048ull * 256);   // 2,113,929,216
constexpr uint64_t kDown = 2048ull / 256 * 210 * (7168ull * 256);       // 3,082,813,440
constexpr uint64_t kExpertsPerLayer = 2 * kGateOrUp + kDown;            // 7,310,671,872
constexpr uint64_t kRoutedExperts = 58 * kExpertsPerLayer;              // 424,018,968,576
constexpr uint64_t kKvAt4096 = 61ull * (512 + 64) * 2 * 4096;           // 287,834,112
static_assert(kRoutedExperts == 424018968576ull);

class FullV3Layout : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The scalar ISA has no CPU layouts: host bytes are the file's, as worked out above.
    knobs::set("TANDEM_CPU_ISA", "scalar");
    dir_ = fs::temp_directory_path() / ("tandem-full-v3-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    modelgen::Deepseek2Options o = modelgen::deepseek2_preset("v3");
    o.vocab = 4096;  // the vocabulary's size changes only token_embd/output; keeps the test fast
    o.header_only = true;
    path_ = (dir_ / "v3.gguf").string();
    modelgen::generate_deepseek2(o, path_);
  }
  static void TearDownTestSuite() {
    knobs::unset("TANDEM_CPU_ISA");
    fs::remove_all(dir_);
  }
  static inline fs::path dir_;
  static inline std::string path_;
};

TEST_F(FullV3Layout, FileIsSparseAndLayoutHasHandCheckedBytes) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_GT(uint64_t(st.st_size), kRoutedExperts);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, 64ull << 20) << "header-only file should be holes";

  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  EXPECT_EQ(m.n_layer, 61);
  EXPECT_EQ(m.n_expert, 256);
  uint64_t routed = 0;
  for (const auto& [kind, bytes] : bytes_by_kind(m))
    if (kind == "routed_experts") routed = bytes;
  EXPECT_EQ(routed, kRoutedExperts);
}

TEST_F(FullV3Layout, OneGpuRulesPutExpertsOnHostAndRestOnGpu) {
  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  uint64_t all = 0;
  for (const auto& t : m.tensors) all += t.bytes;
  Topology topo = Topology::from_hwloc_synthetic("pack:2 numa:1(memory=384GiB) core:16 pu:1");
  topo.add_gpu("H200", 141ull << 30);
  const Rules rules = parse_rules_text(
      "rules:\n  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: gpu:0}\n", "one-gpu.yaml");
  PlanOptions po;
  po.context = 4096;
  const PlacementPlan plan = make_plan(m, topo, &rules, po);
  const MemoryBudget b = plan_budget(plan, m, topo, po);
  EXPECT_EQ(b.host_total, kRoutedExperts);
  EXPECT_EQ(b.node_total[0] + b.node_total[1], kRoutedExperts);
  EXPECT_EQ(b.node_total[0], kRoutedExperts / 2);
  EXPECT_EQ(b.gpu_weights[0], all - kRoutedExperts);
  EXPECT_EQ(b.gpu_kv[0], kKvAt4096);
  EXPECT_EQ(b.kv_total, kKvAt4096);
  EXPECT_EQ(b.gpu_total[0], all - kRoutedExperts + kKvAt4096 + po.gpu_workspace_bytes);
  EXPECT_TRUE(b.fits()) << (b.problems.empty() ? "" : b.problems[0]);
  const std::string text = format_plan_text({plan, b, m, topo, "one-gpu.yaml"});
  EXPECT_NE(text.find("3-60"), std::string::npos) << text;  // the MoE layers share one row
  EXPECT_NE(text.find("cpu x256"), std::string::npos) << text;
  const nlohmann::json j = plan_json({plan, b, m, topo, "one-gpu.yaml"});
  EXPECT_EQ(j["memory"].back()["device"], "host");
  EXPECT_EQ(j["memory"].back()["total"].get<uint64_t>(), kRoutedExperts);
  EXPECT_EQ(j["model"]["bytes_by_kind"]["routed_experts"].get<uint64_t>(), kRoutedExperts);
  EXPECT_EQ(j["layers"][5]["routed_experts"]["cpu"], 256);
  EXPECT_TRUE(j["fits"].get<bool>());
}

// On avx512 the engine holds Q4_K / Q6_K experts repacked (16-row groups x 256 columns: 2432 /
// 3392 bytes, experts/kernels/repacked.h) and drops their mapped pages: the host total is those
// layouts, and a note names the knob that keeps the file's bytes instead.
TEST_F(FullV3Layout, HostCountsTheRepackedLayoutOnAvx512) {
  if (!experts::cpu_supports(experts::CpuIsa::Avx512)) GTEST_SKIP() << "no avx512: no repacked layout";
  constexpr uint64_t kGateOrUpRepacked = 2048 / 16 * (7168 / 256) * 2432ull;  // 8,716,288 per expert
  constexpr uint64_t kDownRepacked = 7168 / 16 * (2048 / 256) * 3392ull;      // 12,156,928
  constexpr uint64_t kRepacked = 58 * 256 * (2 * kGateOrUpRepacked + kDownRepacked);
  knobs::set("TANDEM_CPU_ISA", "avx512");
  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  knobs::set("TANDEM_CPU_ISA", "scalar");
  Topology topo = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=512GiB) core:16 pu:1");
  topo.add_gpu("H200", 141ull << 30);
  const Rules rules = parse_rules_text(
      "rules:\n  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: gpu:0}\n", "one-gpu.yaml");
  const PlacementPlan plan = make_plan(m, topo, &rules, {});
  const MemoryBudget b = plan_budget(plan, m, topo, {});
  EXPECT_EQ(b.host_total, kRepacked);
  EXPECT_GT(kRepacked, kRoutedExperts);
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("TANDEM_PREFILL_REPACK=0"), std::string::npos) << plan.notes[0];
  const std::string text = format_plan_text({plan, b, m, topo, "one-gpu.yaml"});
  EXPECT_NE(text.find("note: CPU experts: the repacked expert layout"), std::string::npos) << text;
  // `layout: gguf`: the engine reads the file's bytes in place.
  const Rules gguf = parse_rules_text(
      "rules:\n  - match: {kind: routed_experts}\n    place: cpu\n    layout: gguf\ndefaults: {place: gpu:0}\n",
      "gguf.yaml");
  const PlacementPlan in_place = make_plan(m, topo, &gguf, {});
  EXPECT_EQ(plan_budget(in_place, m, topo, {}).host_total, kRoutedExperts);
}

TEST_F(FullV3Layout, AutomaticPlanFillsSpareVramWithWholeExpertLayers) {
  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  Topology topo = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=512GiB) core:32 pu:1");
  topo.add_gpu("80GB", 80ull << 30);
  PlanOptions po;
  po.context = 8192;
  const PlacementPlan plan = make_plan(m, topo, nullptr, po);
  const MemoryBudget b = plan_budget(plan, m, topo, po);
  EXPECT_TRUE(b.fits()) << (b.problems.empty() ? "" : b.problems[0]);
  int gpu_layers = 0;
  for (const auto& l : plan.layers)
    if (!l.experts.empty() && l.experts[0].is_gpu()) ++gpu_layers;
  // Everything else on the GPU takes well under 40 GiB, so several 6.8 GiB layers fit, not all.
  EXPECT_GE(gpu_layers, 4);
  EXPECT_LT(gpu_layers, 58);
  EXPECT_EQ(b.host_total, kRoutedExperts - uint64_t(gpu_layers) * kExpertsPerLayer);
  EXPECT_LE(b.gpu_total[0], b.gpu_capacity[0]);
}

TEST_F(FullV3Layout, OverBudgetPlanSaysWhatToChange) {
  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  Topology topo = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=256GiB) core:16 pu:1");
  topo.add_gpu("24GB", 24ull << 30);
  const Rules rules = parse_rules_text("defaults: {place: gpu:0}\n", "all-gpu.yaml");
  PlanOptions po;
  const PlacementPlan plan = make_plan(m, topo, &rules, po);
  const MemoryBudget b = plan_budget(plan, m, topo, po);
  ASSERT_FALSE(b.fits());
  EXPECT_NE(b.problems[0].find("gpu:0 needs"), std::string::npos) << b.problems[0];
  EXPECT_NE(b.problems[0].find("move routed experts"), std::string::npos) << b.problems[0];
}

TEST_F(FullV3Layout, RuleThatMatchesNothingIsAWarning) {
  const auto file = GgufFile::open(path_);
  const ModelLayout m = model_layout_from_gguf(*file);
  Topology topo = Topology::from_hwloc_synthetic("pack:1 numa:1(memory=512GiB) core:16 pu:1");
  const Rules rules = parse_rules_text(
      "rules:\n  - match: {kind: routed_experts, layers: \"70-\"}\n    place: cpu:numa0\n"
      "  - match: {name: \"blk\\\\.1\\\\.attn_qq\\\\.weight\"}\n    place: cpu\ndefaults: {place: cpu}\n",
      "typo.yaml");
  const PlacementPlan plan = make_plan(m, topo, &rules, PlanOptions{});
  int nothing = 0;
  for (const auto& w : plan.warnings)
    if (w.find("matches nothing") != std::string::npos) ++nothing;
  EXPECT_EQ(nothing, 2);
  EXPECT_NE(explain_tensor(plan, "blk.5.ffn_up_exps.weight").find("cpu [0-255] (256)"), std::string::npos)
      << explain_tensor(plan, "blk.5.ffn_up_exps.weight");
  EXPECT_THROW(explain_tensor(plan, "blk.5.ffn_up_exp.weight"), Error);
}

}  // namespace
}  // namespace tandem::placement
