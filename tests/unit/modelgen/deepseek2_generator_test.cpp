// Generated deepseek2 files: they open, hold the tensors and keys of each layout variant with
// the right shapes and types, split output reopens, and the bytes are deterministic.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <iterator>
#include <set>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/quant/dequantize.h"
#include "tools/modelgen/deepseek2_generator.h"
#include "tools/modelgen/deepseek2_metadata.h"
#include "tools/modelgen/deepseek2_tensor_plan.h"

namespace tandem::modelgen {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("tandem-modelgen-" + std::to_string(::getpid()) + "-" +
                                                 std::to_string(counter_++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& n) const { return (path_ / n).string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// Small and fast: f16 everywhere, a few layers and experts.
Deepseek2Options small(const char* preset) {
  Deepseek2Options o = deepseek2_preset(preset);
  o.layers = 3;
  o.n_experts = 8;
  o.n_used = 2;
  o.vocab = 512;
  o.types.set_all(GgmlType::F16);
  o.threads = 2;
  return o;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<float> dequantized(const GgufTensor& t) {
  std::vector<float> out(size_t(t.elements()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.type, t.data + uint64_t(r) * t.row_bytes(), out.data() + r * t.shape[0], t.shape[0]);
  return out;
}

void expect_tensor(const GgufFile& f, const std::string& name, std::vector<int64_t> shape, GgmlType type) {
  const GgufTensor* t = f.find_tensor(name);
  ASSERT_NE(t, nullptr) << name;
  EXPECT_EQ(t->shape, shape) << name;
  EXPECT_EQ(ggml_type_name(t->type), ggml_type_name(type)) << name;
}

TEST(Deepseek2Generator, V2LiteStyle) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  const auto model = generate_deepseek2(o, dir.file("v2.gguf"));
  ASSERT_EQ(model.paths.size(), 1u);
  auto f = GgufFile::open(model.paths[0]);
  EXPECT_EQ(f->architecture(), "deepseek2");
  EXPECT_EQ(f->get_uint("deepseek2.block_count"), 3u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.q_lora_rank"), 0u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.head_count_kv"), 1u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.key_length"), 128u + 16u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.value_length"), 128u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.key_length_mla"), 48u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.value_length_mla"), 32u);
  EXPECT_EQ(f->get_uint("deepseek2.expert_gating_func"), 1u);
  EXPECT_EQ(f->get_uint("deepseek2.vocab_size"), 512u);
  EXPECT_EQ(f->get_string("deepseek2.rope.scaling.type"), "yarn");
  EXPECT_FALSE(f->has("deepseek2.expert_group_count"));
  EXPECT_FALSE(f->has("deepseek2.expert_weights_norm"));
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_TRUE(f->get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_TRUE(f->has("tokenizer.chat_template"));

  const auto F16 = GgmlType::F16, F32 = GgmlType::F32;
  expect_tensor(*f, "token_embd.weight", {256, 512}, F16);
  expect_tensor(*f, "output.weight", {256, 512}, F16);
  expect_tensor(*f, "output_norm.weight", {256}, F32);
  expect_tensor(*f, "blk.0.attn_q.weight", {256, 4 * 48}, F16);
  expect_tensor(*f, "blk.0.attn_kv_a_mqa.weight", {256, 128 + 16}, F16);
  expect_tensor(*f, "blk.0.attn_kv_a_norm.weight", {128}, F32);
  expect_tensor(*f, "blk.0.attn_k_b.weight", {32, 128, 4}, F16);
  expect_tensor(*f, "blk.0.attn_v_b.weight", {128, 32, 4}, F16);
  expect_tensor(*f, "blk.0.attn_output.weight", {4 * 32, 256}, F16);
  expect_tensor(*f, "blk.0.ffn_gate.weight", {256, 512}, F16);
  expect_tensor(*f, "blk.0.ffn_down.weight", {512, 256}, F16);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_gate_inp.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q_a.weight"), nullptr);
  expect_tensor(*f, "blk.1.ffn_gate_inp.weight", {256, 8}, F32);
  expect_tensor(*f, "blk.2.ffn_gate_exps.weight", {256, 256, 8}, F16);
  expect_tensor(*f, "blk.2.ffn_up_exps.weight", {256, 256, 8}, F16);
  expect_tensor(*f, "blk.2.ffn_down_exps.weight", {256, 256, 8}, F16);
  expect_tensor(*f, "blk.2.ffn_gate_shexp.weight", {256, 512}, F16);  // 2 shared experts
  expect_tensor(*f, "blk.2.ffn_down_shexp.weight", {512, 256}, F16);
  EXPECT_EQ(f->find_tensor("blk.2.exp_probs_b.bias"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.3.attn_norm.weight"), nullptr);
  EXPECT_EQ(f->tensors().size(), 3u + 11u + 2u * 15u);  // globals, dense layer, MoE layers
}

TEST(Deepseek2Generator, V3Style) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v3");
  const auto model = generate_deepseek2(o, dir.file("v3.gguf"));
  auto f = GgufFile::open(model.paths[0]);
  EXPECT_EQ(f->get_uint("deepseek2.attention.q_lora_rank"), 64u);
  EXPECT_EQ(f->get_uint("deepseek2.leading_dense_block_count"), 2u);
  EXPECT_EQ(f->get_uint("deepseek2.expert_gating_func"), 2u);
  EXPECT_EQ(f->get_uint("deepseek2.expert_group_count"), 4u);
  EXPECT_EQ(f->get_uint("deepseek2.expert_group_used_count"), 2u);
  EXPECT_TRUE(f->get_bool("deepseek2.expert_weights_norm"));
  EXPECT_FLOAT_EQ(float(f->get_float("deepseek2.expert_weights_scale")), 2.5f);
  const auto F16 = GgmlType::F16, F32 = GgmlType::F32;
  expect_tensor(*f, "blk.0.attn_q_a.weight", {256, 64}, F16);
  expect_tensor(*f, "blk.0.attn_q_a_norm.weight", {64}, F32);
  expect_tensor(*f, "blk.0.attn_q_b.weight", {64, 4 * 48}, F16);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.1.ffn_gate_inp.weight"), nullptr);  // dense
  expect_tensor(*f, "blk.2.exp_probs_b.bias", {8}, F32);
  expect_tensor(*f, "blk.2.ffn_gate_shexp.weight", {256, 256}, F16);  // 1 shared expert
}

TEST(Deepseek2Generator, LegacyKvBAndTiedOutput) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  o.legacy_kv_b = true;
  o.tied_output = true;
  o.yarn = false;
  const auto model = generate_deepseek2(o, dir.file("legacy.gguf"));
  auto f = GgufFile::open(model.paths[0]);
  expect_tensor(*f, "blk.0.attn_kv_b.weight", {128, 4 * (32 + 32)}, GgmlType::F16);
  EXPECT_EQ(f->find_tensor("blk.0.attn_k_b.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_v_b.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->get_uint("deepseek2.attention.head_count_kv"), 4u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.key_length"), 48u);
  EXPECT_EQ(f->get_uint("deepseek2.attention.value_length"), 32u);
  EXPECT_FALSE(f->has("deepseek2.attention.key_length_mla"));
  EXPECT_FALSE(f->has("deepseek2.attention.value_length_mla"));
  EXPECT_FALSE(f->has("deepseek2.rope.scaling.type"));
}

TEST(Deepseek2Generator, QuantizedTypesWithFallbacks) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v3");
  o.types.embeddings = GgmlType::Q8_0;
  o.types.output = GgmlType::Q6_K;
  o.types.attention = GgmlType::Q4_K;
  o.types.dense_ffn = GgmlType::Q5_K;
  o.types.expert_gate_up = GgmlType::Q4_K;
  o.types.expert_down = GgmlType::Q2_K;
  o.block_pool = 512;  // fresh k-quant blocks are slow under sanitizers; pools hold the same kind
  const auto model = generate_deepseek2(o, dir.file("q.gguf"));
  auto f = GgufFile::open(model.paths[0]);
  expect_tensor(*f, "token_embd.weight", {256, 512}, GgmlType::Q8_0);
  expect_tensor(*f, "output.weight", {256, 512}, GgmlType::Q6_K);
  expect_tensor(*f, "blk.0.attn_q_a.weight", {256, 64}, GgmlType::Q4_K);
  expect_tensor(*f, "blk.0.attn_q_b.weight", {64, 192}, GgmlType::Q5_0);     // 64 < 256: q4_K -> q5_0
  expect_tensor(*f, "blk.0.attn_k_b.weight", {32, 128, 4}, GgmlType::Q5_0);
  expect_tensor(*f, "blk.0.ffn_gate.weight", {256, 512}, GgmlType::Q5_K);
  expect_tensor(*f, "blk.2.ffn_gate_exps.weight", {256, 256, 8}, GgmlType::Q4_K);
  expect_tensor(*f, "blk.2.ffn_down_exps.weight", {256, 256, 8}, GgmlType::Q2_K);
  EXPECT_EQ(f->get_uint("general.file_type"), 15u);
  // Weights decode to finite values of the intended scale; norms sit near 1.
  const auto emb = dequantized(f->tensor("token_embd.weight"));
  double sum2 = 0;
  for (float x : emb) {
    ASSERT_TRUE(std::isfinite(x));
    sum2 += double(x) * x;
  }
  EXPECT_NEAR(std::sqrt(sum2 / double(emb.size())), 1.0 / 16.0, 0.01);  // 1/sqrt(hidden)
  const auto down = dequantized(f->tensor("blk.2.ffn_down_exps.weight"));
  sum2 = 0;
  for (float x : down) sum2 += double(x) * x;
  EXPECT_NEAR(std::sqrt(sum2 / double(down.size())), 1.0 / 16.0, 0.015);
  for (float x : dequantized(f->tensor("blk.1.attn_norm.weight"))) {
    EXPECT_GT(x, 0.75f);
    EXPECT_LT(x, 1.25f);
  }
}

TEST(Deepseek2Generator, SplitOutputReopens) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  o.shards = 3;
  const auto model = generate_deepseek2(o, dir.file("m.gguf"));
  ASSERT_EQ(model.paths.size(), 3u);
  EXPECT_EQ(model.paths[0], dir.file("m-00001-of-00003.gguf"));
  EXPECT_EQ(model.paths[2], dir.file("m-00003-of-00003.gguf"));
  auto f = GgufFile::open(model.paths[0]);
  EXPECT_EQ(f->shard_count(), 3);
  EXPECT_EQ(f->tensors().size(), model.tensor_count);
  EXPECT_EQ(f->get_uint("split.tensors.count"), model.tensor_count);
  EXPECT_EQ(f->get_uint("deepseek2.expert_count"), 8u);
  std::set<int> shards;
  for (const auto& t : f->tensors()) shards.insert(t.shard);
  EXPECT_EQ(shards.size(), 3u);
  // Same tensors and bytes as the unsplit file.
  const auto whole = generate_deepseek2([&] { auto w = o; w.shards = 1; return w; }(), dir.file("whole.gguf"));
  auto g = GgufFile::open(whole.paths[0]);
  ASSERT_EQ(g->tensors().size(), f->tensors().size());
  for (size_t i = 0; i < g->tensors().size(); ++i) {
    const auto& a = g->tensors()[i];
    const auto& b = f->tensor(a.name);
    ASSERT_EQ(a.nbytes, b.nbytes) << a.name;
    EXPECT_EQ(0, std::memcmp(a.data, b.data, a.nbytes)) << a.name;
  }
  EXPECT_THROW(generate_deepseek2([&] { auto w = o; w.shards = 1000; return w; }(), dir.file("x.gguf")), Error);
}

TEST(Deepseek2Generator, BytesDependOnSeedOnly) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  o.types.expert_gate_up = GgmlType::Q4_0;
  o.threads = 1;
  generate_deepseek2(o, dir.file("a.gguf"));
  o.threads = 3;
  generate_deepseek2(o, dir.file("b.gguf"));
  o.seed = 2;
  generate_deepseek2(o, dir.file("c.gguf"));
  const auto a = read_all(dir.file("a.gguf"));
  EXPECT_EQ(a, read_all(dir.file("b.gguf")));
  EXPECT_NE(a, read_all(dir.file("c.gguf")));
  EXPECT_EQ(a.size(), read_all(dir.file("c.gguf")).size());
}

TEST(Deepseek2Generator, BlockPoolGivesValidDeterministicWeights) {
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  o.types.set_all(GgmlType::Q4_K);
  o.block_pool = 64;
  generate_deepseek2(o, dir.file("p1.gguf"));
  o.threads = 1;
  generate_deepseek2(o, dir.file("p2.gguf"));
  EXPECT_EQ(read_all(dir.file("p1.gguf")), read_all(dir.file("p2.gguf")));
  auto f = GgufFile::open(dir.file("p1.gguf"));
  const auto w = dequantized(f->tensor("blk.1.ffn_up_exps.weight"));
  double sum2 = 0;
  for (float x : w) {
    ASSERT_TRUE(std::isfinite(x));
    sum2 += double(x) * x;
  }
  EXPECT_NEAR(std::sqrt(sum2 / double(w.size())), 1.0 / 16.0, 0.01);
}

TEST(Deepseek2Generator, VocabFromAnotherFile) {
  const std::string vocab = std::string(TANDEM_SHARED_DIR) + "/vocab/ggml-vocab-deepseek-llm.gguf";
  if (!fs::exists(vocab)) GTEST_SKIP() << vocab << " not present";
  TempDir dir;
  Deepseek2Options o = small("tiny-v2");
  o.layers = 1;
  o.vocab_from = vocab;
  o.types.embeddings = o.types.output = GgmlType::Q4_0;
  o.block_pool = 256;  // 100k-token embeddings: keep the test fast
  const auto model = generate_deepseek2(o, dir.file("v.gguf"));
  auto f = GgufFile::open(model.paths[0]);
  auto src = GgufFile::open(vocab);
  const auto tokens = src->get_string_array("tokenizer.ggml.tokens");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens"), tokens);
  EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), src->get_string("tokenizer.ggml.pre"));
  EXPECT_EQ(f->get_uint("deepseek2.vocab_size"), tokens.size());
  EXPECT_EQ(f->tensor("token_embd.weight").shape[1], int64_t(tokens.size()));
}

// The golden files were written by llama.cpp: the same shape must give the same keys (names,
// value types, order) and the same tensor names and shapes.
void expect_mirrors_golden(const std::string& golden_name, const char* preset, int64_t vocab) {
  const std::string path = std::string(TANDEM_SHARED_DIR) + "/golden/" + golden_name;
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto golden = GgufFile::open(path);
  Deepseek2Options o = deepseek2_preset(preset);
  o.vocab = vocab;
  const Deepseek2Metadata meta = deepseek2_metadata(o);
  std::vector<std::string> ours, theirs;
  for (const auto& [k, v] : meta.kv)
    if (k != "tokenizer.chat_template") ours.push_back(k + ":" + std::string(gguf_value_type_name(v.type)));
  for (const auto& [k, v] : golden->metadata()) theirs.push_back(k + ":" + std::string(gguf_value_type_name(v.type)));
  EXPECT_EQ(ours, theirs);
  for (const auto& [k, v] : meta.kv) {
    if (k.rfind("deepseek2.", 0) != 0) continue;
    const GgufValue* g = golden->find(k);
    ASSERT_NE(g, nullptr) << k;
    EXPECT_EQ(gguf_value_summary(v), gguf_value_summary(*g)) << k;
  }
  const auto plan = deepseek2_tensor_plan(o, meta.vocab);
  ASSERT_EQ(plan.size(), golden->tensors().size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].info.name, golden->tensors()[i].name);
    EXPECT_EQ(plan[i].info.shape, golden->tensors()[i].shape) << plan[i].info.name;
  }
}

TEST(Deepseek2Generator, TinyV2MirrorsLlamaCppFile) { expect_mirrors_golden("tiny-v2-q4km.gguf", "tiny-v2", 102400); }
TEST(Deepseek2Generator, TinyV3MirrorsLlamaCppFile) { expect_mirrors_golden("tiny-v3-q4km.gguf", "tiny-v3", 32256); }

TEST(Deepseek2Generator, RealPresetsHaveTheRealShapes) {
  const auto v3 = deepseek2_preset("v3");
  const auto plan = deepseek2_tensor_plan(v3, v3.vocab);
  size_t experts = 0;
  for (const auto& t : plan)
    if (t.info.name == "blk.3.ffn_gate_exps.weight") {
      EXPECT_EQ(t.info.shape, (std::vector<int64_t>{7168, 2048, 256}));
      ++experts;
    }
  EXPECT_EQ(experts, 1u);
  const auto lite = deepseek2_preset("v2-lite");
  for (const auto& t : deepseek2_tensor_plan(lite, lite.vocab))
    if (t.info.name == "blk.1.ffn_down_exps.weight") {
      EXPECT_EQ(t.info.shape, (std::vector<int64_t>{1408, 2048, 64}));
      EXPECT_EQ(t.info.type, GgmlType::Q8_0);  // 1408 is no multiple of 256: q6_K falls back to q8_0
    }
}

TEST(Deepseek2Generator, BadOptionsAreNamed) {
  Deepseek2Options o = small("tiny-v2");
  o.n_used = 9;
  try {
    generate_deepseek2(o, "/tmp/never-written.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_used"), std::string::npos) << e.what();
  }
  try {
    deepseek2_preset("v4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny-v3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tandem::modelgen
