// The imatrix reader: llama.cpp's file from ../shared/golden-iq, hand-built files with the
// layouts it writes (per-expert counts, one count for a flat per-head tensor), and broken ones.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gguf/gguf_writer.h"
#include "tools/modelgen/deepseek2_generator.h"
#include "tools/modelgen/importance_matrix.h"

namespace tandem::modelgen {
namespace {

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct Built {
  std::vector<uint8_t> bytes;
  std::unique_ptr<GgufFile> file;
};

Built build(const GgufWriter& w) {
  Built b{w.to_bytes(), nullptr};
  b.file = GgufFile::parse(b.bytes.data(), b.bytes.size(), "test.imatrix");
  return b;
}

GgufWriter good_writer() {
  GgufWriter w;
  w.set("general.type", GgufValue::string("imatrix"));
  // Two experts of 4 columns: sums of squares and 2 / 4 activations.
  w.add_tensor("blk.1.ffn_up_exps.weight.in_sum2", GgmlType::F32, {4, 2},
               f32_bytes({2, 4, 6, 8, 4, 8, 12, 0}));
  w.add_tensor("blk.1.ffn_up_exps.weight.counts", GgmlType::F32, {1, 2}, f32_bytes({2, 4}));
  // A per-head tensor stored flat with one count (as llama.cpp writes attn_k_b).
  w.add_tensor("blk.0.attn_k_b.weight.in_sum2", GgmlType::F32, {4}, f32_bytes({1, 2, 3, 4}));
  w.add_tensor("blk.0.attn_k_b.weight.counts", GgmlType::F32, {1}, f32_bytes({0.5f}));
  return w;
}

TEST(ImportanceMatrix, MeansPerMatrix) {
  const auto b = build(good_writer());
  const auto im = ImportanceMatrix::from_gguf(*b.file, "test.imatrix");
  EXPECT_EQ(im.size(), 2u);
  EXPECT_EQ(im.for_tensor("blk.1.ffn_up_exps.weight", 4, 2), (std::vector<float>{1, 2, 3, 4, 1, 2, 3, 0}));
  EXPECT_EQ(im.for_tensor("blk.0.attn_k_b.weight", 2, 2), (std::vector<float>{2, 4, 6, 8}));
  EXPECT_TRUE(im.for_tensor("blk.0.attn_q.weight", 4, 1).empty());
  EXPECT_THROW(im.for_tensor("blk.1.ffn_up_exps.weight", 8, 2), Error);
}

void expect_rejected(GgufWriter w, const std::string& what) {
  try {
    const auto b = build(w);
    ImportanceMatrix::from_gguf(*b.file, "test.imatrix");
    ADD_FAILURE() << "accepted: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test.imatrix"), std::string::npos) << e.what();
  }
}

TEST(ImportanceMatrix, BadFilesAreClearErrors) {
  {
    GgufWriter w = good_writer();
    w.set("general.type", GgufValue::string("model"));
    expect_rejected(w, "a model file");
  }
  {
    GgufWriter w;
    w.add_tensor("x.in_sum2", GgmlType::F32, {2}, f32_bytes({1, 1}));
    expect_rejected(w, "no counts");
  }
  {
    GgufWriter w;
    w.add_tensor("x.in_sum2", GgmlType::F32, {2}, f32_bytes({1, -1}));
    w.add_tensor("x.counts", GgmlType::F32, {1}, f32_bytes({1}));
    expect_rejected(w, "negative sum");
  }
  {
    GgufWriter w;
    w.add_tensor("x.in_sum2", GgmlType::F32, {2, 3}, f32_bytes({1, 1, 1, 1, 1, 1}));
    w.add_tensor("x.counts", GgmlType::F32, {2}, f32_bytes({1, 1}));
    expect_rejected(w, "2 counts for 3 rows");
  }
  {
    GgufWriter w;
    w.add_tensor("x.in_sum2", GgmlType::F16, {2}, {0, 0, 0, 0});
    w.add_tensor("x.counts", GgmlType::F32, {1}, f32_bytes({1}));
    expect_rejected(w, "f16 sums");
  }
  {
    GgufWriter w;
    w.add_tensor("token_embd.weight", GgmlType::F32, {2}, f32_bytes({1, 1}));
    expect_rejected(w, "a weight tensor");
  }
  expect_rejected(GgufWriter{}, "no tensors");
}

TEST(ImportanceMatrix, LlamaCppFile) {
  const std::string path = std::string(TANDEM_SHARED_DIR) + "/golden-iq/tiny-v2c.imatrix.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  const auto im = ImportanceMatrix::load(path);
  EXPECT_GT(im.size(), 20u);
  const auto exps = im.for_tensor("blk.1.ffn_gate_exps.weight", 256, 16);
  ASSERT_EQ(exps.size(), 256u * 16);
  double sum = 0;
  for (float v : exps) sum += v;
  EXPECT_GT(sum, 0.0);
  EXPECT_EQ(im.for_tensor("blk.0.attn_k_b.weight", 32, 4).size(), 128u);
}

}  // namespace
}  // namespace tandem::modelgen

namespace tandem::modelgen {
namespace {

// The generator weighs the tensors the imatrix names (and only those) and rejects one that does
// not fit the model; for each type whose quantizer takes importance weights.
TEST(ImportanceMatrix, GeneratorUsesIt) {
  const auto dir = std::filesystem::temp_directory_path() / ("tandem-imatrix-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const GgmlType type : {GgmlType::IQ4_XS, GgmlType::IQ2_XXS, GgmlType::IQ1_M, GgmlType::IQ3_S}) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    Deepseek2Options o = deepseek2_preset("tiny-v2");
    o.layers = 2;
    o.n_experts = 4;
    o.n_used = 2;
    o.vocab = 512;
    o.types.set_all(GgmlType::F16);
    o.types.expert_gate_up = type;
    o.threads = 2;
    const int64_t hidden = o.hidden;
    GgufWriter w;
    w.set("general.type", GgufValue::string("imatrix"));
    std::vector<float> sum2(size_t(hidden * 4));
    for (size_t i = 0; i < sum2.size(); ++i) sum2[i] = float(1 + (i * 7919) % 97);
    w.add_tensor("blk.1.ffn_up_exps.weight.in_sum2", GgmlType::F32, {hidden, 4}, f32_bytes(sum2));
    w.add_tensor("blk.1.ffn_up_exps.weight.counts", GgmlType::F32, {1, 4}, f32_bytes({3, 3, 3, 3}));
    const std::string im = (dir / "m.imatrix.gguf").string();
    w.write(im);
    const std::string plain = (dir / "plain.gguf").string(), weighted = (dir / "weighted.gguf").string();
    generate_deepseek2(o, plain);
    o.imatrix = im;
    generate_deepseek2(o, weighted);
    const auto a = GgufFile::open(plain), b = GgufFile::open(weighted);
    for (const char* name : {"blk.1.ffn_up_exps.weight", "blk.1.ffn_gate_exps.weight"}) {
      const GgufTensor& ta = a->tensor(name);
      const GgufTensor& tb = b->tensor(name);
      EXPECT_EQ(tb.type, type);
      const bool same = ta.nbytes == tb.nbytes && std::memcmp(ta.data, tb.data, ta.nbytes) == 0;
      EXPECT_EQ(same, std::string(name) != "blk.1.ffn_up_exps.weight") << name;
    }
    o.n_experts = 8;  // the imatrix now has too few expert rows
    EXPECT_THROW(generate_deepseek2(o, weighted), Error);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tandem::modelgen
