#include "placement/rules.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/core/error.h"

namespace tandem::placement {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_rules_text(text, "r.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PlacementRules, ParsesTheIssueExample) {
  const Rules r = parse_rules_text(R"(rules:
  - match: {kind: routed_experts, layers: "3-5", experts: "0-15"}
    place: gpu:0
  - match: {kind: attention, layers: "1"}
    place: cpu
  - match: {name: "output\\.weight"}
    place: cpu
  - match: {kind: routed_experts, layers: "30-"}
    place: cpu:numa1
  - match: {kind: routed_experts}
    place: cpu:replicate
    layout: gguf
defaults: {place: gpu:0}
kv_cache: {type: bf16}
prefill: {experts_on_gpu_from_tokens: 512}
)",
                                   "r.yaml");
  ASSERT_EQ(r.rules.size(), 5u);
  EXPECT_EQ(r.rules[0].origin, "r.yaml:2");
  EXPECT_EQ(r.rules[0].place.device, Device::gpu(0));
  EXPECT_TRUE(r.rules[0].match.experts->contains(15));
  EXPECT_FALSE(r.rules[0].match.experts->contains(16));
  EXPECT_EQ(*r.rules[1].match.kind, TensorKind::Attention);
  EXPECT_EQ(*r.rules[2].match.name, "output\\.weight");
  EXPECT_TRUE(full_match(*r.rules[2].match.name, "output.weight"));
  EXPECT_FALSE(full_match(*r.rules[2].match.name, "output.weight2"));
  EXPECT_EQ(r.rules[3].place.device.str(), "cpu:numa1");
  EXPECT_TRUE(r.rules[3].match.layers->contains(60));
  EXPECT_FALSE(r.rules[3].match.layers->contains(29));
  EXPECT_EQ(r.rules[4].place.device.str(), "cpu:replicate");
  EXPECT_EQ(*r.rules[4].place.layout, ExpertLayout::Gguf);
  EXPECT_EQ(r.defaults->device, Device::gpu(0));
  EXPECT_EQ(*r.kv_cache_type, "bf16");
  EXPECT_EQ(*r.experts_on_gpu_from_tokens, 512);
}

TEST(PlacementRules, Ranges) {
  const IndexRanges r = parse_index_ranges("0-2,7, 9-", "x");
  for (int i : {0, 1, 2, 7, 9, 100}) EXPECT_TRUE(r.contains(i)) << i;
  for (int i : {3, 6, 8}) EXPECT_FALSE(r.contains(i)) << i;
  EXPECT_EQ(r.str(), "0-2,7,9-");
  for (const char* bad : {"", "5-3", "a", "1,,2", "1,", "-3", "1-2-3", "99999999999999"})
    EXPECT_THROW(parse_index_ranges(bad, "x"), Error) << bad;
}

TEST(PlacementRules, DeviceNames) {
  EXPECT_EQ(Device::gpu(1).str(), "gpu:1");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cpu(2).str(), "cpu:numa2");
  EXPECT_EQ(Device::cpu(Device::kAllNodes, true).str(), "cpu:replicate");
  PlacementPlan p;
  p.layers.resize(2);
  p.layers[1].experts = {Device::cpu(), Device::gpu(3)};
  p.output = Device::gpu(1);
  EXPECT_EQ(p.gpus(), (std::vector<int>{1, 3}));
}

TEST(PlacementRules, ErrorsNameFileLineColumn) {
  EXPECT_EQ(error_of("rulez: []\n"),
            "r.yaml:1:1: unknown key \"rulez\" in rules file (allowed: include, rules, defaults, kv_cache, prefill)");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention, layer: \"1\"}\n    place: cpu\n"),
            "r.yaml:2:30: unknown key \"layer\" in match (allowed: kind, name, layers, experts)");
  EXPECT_EQ(error_of("rules:\n  - match: {layers: \"5-3\"}\n    place: cpu\n"), "r.yaml:2:21: reversed range \"5-3\"");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention}\n    place: tpu\n"),
            "r.yaml:3:12: unknown place \"tpu\" (gpu, gpu:N, cpu, cpu:numaK, cpu:replicate)");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention}\n    place: gpu:x\n"),
            "r.yaml:3:12: bad GPU index in place \"gpu:x\"");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention}\n    place: [cpu]\n"), "r.yaml:3:12: place must be a string");
  EXPECT_EQ(error_of("rules: {a: 1}\n"), "r.yaml:1:8: rules must be a list");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: mlp}\n    place: cpu\n"),
            "r.yaml:2:19: unknown kind \"mlp\" (token_embd, attention, dense_ffn, router, shared_experts, "
            "routed_experts, output)");
  EXPECT_EQ(error_of("rules:\n  - match: {name: \"(\"}\n    place: cpu\n").rfind("r.yaml:2:19: bad name regex", 0), 0u);
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention}\n"), "r.yaml:2:5: rule without place");
  EXPECT_EQ(error_of("rules:\n  - place: cpu\n"), "r.yaml:2:5: rule without match");
  EXPECT_EQ(error_of("kv_cache: {type: q8}\n"), "r.yaml:1:18: unknown kv_cache type \"q8\" (f16, bf16)");
  EXPECT_EQ(error_of("prefill: {experts_on_gpu_from_tokens: -1}\n"),
            "r.yaml:1:39: experts_on_gpu_from_tokens must be a non-negative integer");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention}\n    place: gpu:0\n    layout: repacked\n"),
            "r.yaml:4:13: layout applies to CPU places only, not gpu:0");
  EXPECT_EQ(error_of("rules:\n  - match: {kind: attention, experts: \"1\"}\n    place: cpu\n"),
            "r.yaml:2:39: experts applies to kind routed_experts only");
  EXPECT_EQ(error_of("rules: [\n").rfind("r.yaml:", 0), 0u);  // YAML syntax errors keep their mark
}

TEST(PlacementRules, IncludesAreRelativeAndCyclesFail) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tandem_rules_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  auto write = [&](const fs::path& p, const std::string& s) { std::ofstream(p) << s; };
  write(dir / "sub" / "common.yaml", "rules:\n  - match: {kind: output}\n    place: cpu\n");
  write(dir / "main.yaml", "include: [sub/common.yaml]\nrules:\n  - match: {kind: attention}\n    place: gpu\n");
  const Rules r = parse_rules_file((dir / "main.yaml").string());
  ASSERT_EQ(r.rules.size(), 2u);
  EXPECT_EQ(*r.rules[0].match.kind, TensorKind::Output);  // included rules come first
  EXPECT_NE(r.rules[0].origin.find("common.yaml:2"), std::string::npos);
  EXPECT_TRUE(r.rules[1].place.any_gpu);

  write(dir / "a.yaml", "include: b.yaml\n");
  write(dir / "b.yaml", "include: [a.yaml]\n");
  try {
    parse_rules_file((dir / "a.yaml").string());
    ADD_FAILURE() << "cycle not detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("include cycle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("b.yaml:1:11"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tandem::placement
