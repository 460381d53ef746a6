// Machine portraits and expert statistics files: round trips, clear errors for bad files, the
// bandwidth curve's interpolation, the SVG chart, and the rule language's hot(stats.json, N).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "placement/expert_stats.h"
#include "placement/machine_portrait.h"
#include "placement/plan_builder.h"
#include "placement/rules.h"
#include "runtime/core/error.h"

using namespace tandem;
using namespace tandem::placement;

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string portrait_text() { return read(std::string(TANDEM_PORTRAITS_DIR) + "/numa2-gpu1.json"); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Portrait, RoundTripsThroughJson) {
  const MachinePortrait p = parse_portrait(portrait_text(), "p.json");
  ASSERT_EQ(p.nodes.size(), 2u);
  ASSERT_EQ(p.gpus.size(), 1u);
  const MachinePortrait q = parse_portrait(portrait_json(p).dump(), "q.json");
  EXPECT_EQ(portrait_json(q), portrait_json(p));
  EXPECT_EQ(q.topology().nodes.size(), 2u);
  EXPECT_EQ(q.topology().gpus.at(0).device_local_bytes, 24ull << 30);
}

TEST(Portrait, BandwidthCurveInterpolates) {
  const MachinePortrait p = parse_portrait(portrait_text(), "p.json");
  // Points 1:9 2:18 4:36 8:72 16:80, scaled so 16 threads give the diagonal (80).
  EXPECT_NEAR(p.node_bandwidth(0, 16), 80.0, 1e-9);
  EXPECT_NEAR(p.node_bandwidth(0, 6), 54.0, 1e-9);
  EXPECT_NEAR(p.node_bandwidth(0, 64), 80.0, 1e-9);
  EXPECT_EQ(p.node_bandwidth(5, 4), 0.0);
}

TEST(Portrait, SvgHasOneCurvePerNodeAndTheCopyLines) {
  const MachinePortrait p = parse_portrait(portrait_text(), "p.json");
  const std::string svg = portrait_svg(p);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  size_t curves = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++curves;
  EXPECT_EQ(curves, 2u);
  EXPECT_NE(svg.find("gpu 0 h2d pinned"), std::string::npos);
  EXPECT_NE(portrait_table(p).find("h2d pin"), std::string::npos);
}

TEST(Portrait, BadFilesNameTheProblem) {
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(portrait_text());
    edit(j);
    return error_of([&] { (void)parse_portrait(j.dump(), "bad.json"); });
  };
  EXPECT_NE(error_of([] { (void)parse_portrait("{not json", "bad.json"); }).find("not a JSON machine portrait"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j.erase("format"); }).find("not a tandem-machine-portrait"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["version"] = 7; }).find("version 7"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["read_gb_per_s"][1].erase(1); }).find("read_gb_per_s[1]: expected 2 columns"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["read_gb_per_s"][0][0] = -3; }).find("read_gb_per_s[0][0]"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["gpus"][0]["h2d_pinned_gb_per_s"] = 0; }).find("gpus[0].h2d_pinned_gb_per_s"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["scaling"][0]["points"][2]["threads"] = 1; }).find("thread counts must ascend"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["machine"]["numa_nodes"] = nlohmann::json::array(); }).find("machine.numa_nodes"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["kernels"][0]["gemv_gb_per_s"] = "fast"; }).find("kernels[0].gemv_gb_per_s"), std::string::npos);
  EXPECT_NE(error_of([] { (void)read_portrait_file("/nonexistent/p.json"); }).find("cannot read machine portrait"), std::string::npos);
}

std::string stats_text() {
  ExpertStats s;
  s.model = "m", s.n_layer = 3, s.n_expert = 6, s.n_expert_used = 2, s.prompts = 1, s.prefill_tokens = 10, s.decode_tokens = 5;
  s.layers.push_back({1, {5, 0, 9, 1, 0, 0}, {0, 0, 1, 4, 0, 0}});
  s.layers.push_back({2, {0, 0, 0, 0, 7, 8}, {0, 1, 0, 0, 0, 0}});
  return expert_stats_json(s).dump();
}

TEST(ExpertStats, RoundTripAndHottest) {
  const ExpertStats s = parse_expert_stats(stats_text(), "s.json");
  ASSERT_EQ(s.layers.size(), 2u);
  EXPECT_EQ(expert_stats_json(parse_expert_stats(expert_stats_json(s).dump(), "t.json")), expert_stats_json(s));
  EXPECT_EQ(hottest_experts(*s.layer(1), 3), (std::vector<int64_t>{2, 0, 3}));  // 10, 5, 5: ties to the lower index
  EXPECT_EQ(hottest_experts(*s.layer(2), 2), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(hottest_experts(*s.layer(2), 99).size(), 6u);
  EXPECT_EQ(expert_list_text({7, 3, 4, 5, 0}), "0,3-5,7");
}

TEST(ExpertStats, BadFilesNameTheProblem) {
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = nlohmann::json::parse(stats_text());
    edit(j);
    return error_of([&] { (void)parse_expert_stats(j.dump(), "bad.json"); });
  };
  EXPECT_NE(error_of([] { (void)parse_expert_stats("[1,", "bad.json"); }).find("not a JSON expert statistics file"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["format"] = "x"; }).find("not a tandem-expert-stats file"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["version"] = 2; }).find("version 2"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["layers"][0]["prefill"].erase(0); }).find("layers[0].prefill: 5 counts, but n_expert is 6"),
            std::string::npos);
  EXPECT_NE(with([](auto& j) { j["layers"][1]["decode"][2] = -1; }).find("negative count"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["layers"][1]["decode"][2] = 1.5; }).find("layers[1].decode[2]"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["layers"][1]["layer"] = 1; }).find("out of order or repeated"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["layers"][1]["layer"] = 3; }).find("\"layer\" = 3 is outside 0..2"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j["n_expert_used"] = 9; }).find("n_expert_used"), std::string::npos);
  EXPECT_NE(with([](auto& j) { j.erase("layers"); }).find("missing \"layers\""), std::string::npos);
}

class HotRules : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("tandem_hot_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "stats.json") << stats_text();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
};

ModelLayout three_layers() {
  ModelLayout m;
  m.n_layer = 3, m.n_expert = 6;
  for (int l = 0; l < 3; ++l) {
    m.tensors.push_back({"blk." + std::to_string(l) + ".attn_norm.weight", 64});
    if (l > 0) m.tensors.push_back({"blk." + std::to_string(l) + ".ffn_up_exps.weight", 6 * 1024});
  }
  return m;
}

TEST_F(HotRules, PlaceTheHottestExpertsOfEachLayer) {
  std::ofstream(dir / "r.yaml") << "rules:\n  - match: {kind: routed_experts, experts: \"hot(stats.json, 2)\"}\n    place: gpu:0\n"
                                   "  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: gpu:0}\n";
  const Rules r = parse_rules_file((dir / "r.yaml").string());
  Topology t = Topology::from_hwloc_synthetic("numa:1(memory=8GB) core:2 pu:1");
  t.add_gpu("g", 8ull << 30);
  const PlacementPlan p = make_plan(three_layers(), t, &r, {});
  auto gpu_set = [&](size_t l) {
    std::vector<int> out;
    for (size_t e = 0; e < p.layers[l].experts.size(); ++e)
      if (p.layers[l].experts[e].is_gpu()) out.push_back(int(e));
    return out;
  };
  EXPECT_EQ(gpu_set(1), (std::vector<int>{0, 2}));
  EXPECT_EQ(gpu_set(2), (std::vector<int>{4, 5}));
}

TEST_F(HotRules, BadHotRulesNameTheProblem) {
  auto err = [&](const std::string& experts) {
    std::ofstream(dir / "r.yaml") << "rules:\n  - match: {kind: routed_experts, experts: \"" << experts << "\"}\n    place: gpu:0\n";
    return error_of([&] { (void)parse_rules_file((dir / "r.yaml").string()); });
  };
  EXPECT_NE(err("hot(missing.json, 2)").find("cannot read expert statistics file"), std::string::npos);
  EXPECT_NE(err("hot(missing.json, 2)").find("r.yaml:2:"), std::string::npos);
  EXPECT_NE(err("hot(stats.json, 0)").find("bad expert count"), std::string::npos);
  EXPECT_NE(err("hot(stats.json)").find("expected hot(STATS.json, N)"), std::string::npos);
  std::ofstream(dir / "junk.json") << "{\"format\": \"tandem-expert-stats\", \"version\": 1}";
  EXPECT_NE(err("hot(junk.json, 2)").find("missing \"n_layer\""), std::string::npos);
}

}  // namespace
