// Several sequences through one BatchedLm pass (continuous batching): for each compute path, chunks
// of mixed lengths on several slots must give, per sequence, what the single-sequence reference
// pass gives when fed that sequence's tokens alone; truncate, copy_prefix and bad arguments too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/engine/model_loader.h"
#include "runtime/gguf/gguf_file.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/model/batched_lm.h"
#include "runtime/model/deepseek2/deepseek2_hybrid.h"
#include "runtime/model/deepseek2/deepseek2_reference.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

struct Shape {
  const char* name;
  void (*tweak)(modelgen::Deepseek2Options&);
};

modelgen::Deepseek2Options base_options() {
  modelgen::Deepseek2Options o = modelgen::deepseek2_preset("tiny-v2");
  o.hidden = 128;
  o.layers = 3;
  o.n_dense = 1;
  o.heads = 4;
  o.ffn = 256;
  o.expert_ffn = 128;
  o.n_experts = 8;
  o.n_used = 3;
  o.n_shared = 1;
  o.vocab = 512;
  o.seed = 11;
  o.block_pool = 0;
  return o;
}

const Shape kShapes[] = {
    {"v2_q4k", [](modelgen::Deepseek2Options&) {}},
    {"v3_style_q8", [](modelgen::Deepseek2Options& o) {
       o.types.set_all(GgmlType::Q8_0);
       o.q_lora_rank = 64;
       o.gating = 2;
       o.groups = 4;
       o.groups_used = 2;
       o.expert_weights_norm = true;
       o.n_experts = 16;
       o.n_used = 4;
     }},
    {"legacy_kv_b_other_ranks", [](modelgen::Deepseek2Options& o) {
       o.legacy_kv_b = true;
       o.heads = 8;
       o.kv_lora_rank = 96;
       o.qk_nope = 48;
       o.qk_rope = 32;
       o.v_head = 40;
       o.n_dense = 0;
     }},
};

std::string generate(const Shape& s) {
  static std::map<std::string, std::string> written;
  auto it = written.find(s.name);
  if (it != written.end()) return it->second;
  const fs::path dir = fs::path(TANDEM_BINARY_DIR) / "generated-models";
  fs::create_directories(dir);
  modelgen::Deepseek2Options o = base_options();
  s.tweak(o);
  const std::string path = (dir / (std::string("batched-") + s.name + ".gguf")).string();
  return written.emplace(s.name, modelgen::generate_deepseek2(o, path).paths.at(0)).first->second;
}

constexpr int kSlots = 4;
constexpr uint32_t kContext = 48;

// Relative L2 error of one row of logits, and whether the argmax agrees (a near-tie that flips,
// top-2 closer than 5% of the RMS, counts as agreeing: 8-bit activations may flip it).
struct RowDiff {
  double rel = 0;
  bool agree = true;
};
RowDiff diff_row(const float* got, const float* want, int64_t nv) {
  double num = 0, den = 0;
  int64_t ag = 0, aw = 0;
  for (int64_t i = 0; i < nv; ++i) {
    num += double(got[i] - want[i]) * double(got[i] - want[i]);
    den += double(want[i]) * want[i];
    if (got[i] > got[ag]) ag = i;
    if (want[i] > want[aw]) aw = i;
  }
  RowDiff d;
  d.rel = std::sqrt(num / (den > 0 ? den : 1));
  d.agree = ag == aw || want[aw] - want[ag] < 0.05 * std::sqrt(den / double(nv));
  return d;
}

// A single-sequence oracle: a pass (by default the reference) with one slot, fed one sequence
// from an empty cache in one forward.
class Oracle {
 public:
  explicit Oracle(const std::string& path, ComputePath cp = ComputePath::Reference, ModelLoadOptions lo = {}) {
    lo.path = cp;
    lo.max_context = 64;
    lo.threads = 2;
    m_ = load_model(path, lo);
  }
  int64_t n_vocab() const { return m_.lm->n_vocab(); }
  // Logits after the last token of `tokens`.
  std::vector<float> last(const std::vector<int32_t>& tokens) {
    auto it = memo_.find(tokens);
    if (it != memo_.end()) return it->second;
    m_.lm->reset();
    std::vector<float> logits;
    m_.lm->forward_last(tokens, logits);
    return memo_.emplace(tokens, logits).first->second;
  }

 private:
  LoadedModel m_;
  std::map<std::vector<int32_t>, std::vector<float>> memo_;
};

struct Tolerance {
  double max_rel;    // per row, against the oracle
  double min_agree;  // argmax agreement over all rows
};

// Drives a BatchedLm and checks each returned row against the oracle.
class Checker {
 public:
  // same_path: the same pass with one sequence, checked with a tight bound (what batching may
  // change: rounding of other batch shapes) beside the reference's looser one.
  Checker(BatchedLm& lm, Oracle& oracle, Tolerance tol, std::string label, Oracle* same_path = nullptr,
          double same_path_rel = 0)
      : lm_(lm), oracle_(oracle), tol_(tol), label_(std::move(label)), fed_(size_t(lm.slots())),
        same_(same_path), same_rel_(same_path_rel) {}

  // One pass: (slot, tokens) per chunk.
  void step(const std::vector<std::pair<int, std::vector<int32_t>>>& chunks) {
    std::vector<SequenceChunk> cs;
    for (const auto& [slot, toks] : chunks) cs.push_back({slot, toks});
    std::vector<float> logits;
    lm_.forward(cs, logits);
    const int64_t nv = lm_.n_vocab();
    ASSERT_EQ(logits.size(), chunks.size() * size_t(nv)) << label_;
    for (size_t i = 0; i < chunks.size(); ++i) {
      auto& seq = fed_[size_t(chunks[i].first)];
      seq.insert(seq.end(), chunks[i].second.begin(), chunks[i].second.end());
      EXPECT_EQ(lm_.n_past(chunks[i].first), int64_t(seq.size())) << label_;
      expect_row(logits.data() + i * size_t(nv), seq);
    }
  }
  void truncate(int slot, int64_t n) {
    lm_.truncate(slot, n);
    fed_[size_t(slot)].resize(size_t(n));
    EXPECT_EQ(lm_.n_past(slot), n);
  }
  void copy_prefix(int src, int dst, int64_t n) {
    lm_.copy_prefix(src, dst, n);
    fed_[size_t(dst)].assign(fed_[size_t(src)].begin(), fed_[size_t(src)].begin() + n);
    EXPECT_EQ(lm_.n_past(dst), n);
  }
  void finish() {
    std::printf("[ %s ] %d rows, worst relative L2 %.5f, argmax agreement %.2f; same pass alone: %.5f\n",
                label_.c_str(), rows_, worst_, double(agree_) / rows_, worst_same_);
    EXPECT_GE(double(agree_) / rows_, tol_.min_agree) << label_;
  }

 private:
  void expect_row(const float* got, const std::vector<int32_t>& seq) {
    const std::vector<float> want = oracle_.last(seq);
    const RowDiff d = diff_row(got, want.data(), lm_.n_vocab());
    for (int64_t i = 0; i < lm_.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(got[i])) << label_;
    std::string ids;
    for (int32_t t : seq) ids += " " + std::to_string(t);
    EXPECT_LT(d.rel, tol_.max_rel) << label_ << ": sequence" << ids;
    if (std::getenv("DIAG")) std::printf("rel %.4f seq%s\n", d.rel, ids.c_str());
    worst_ = std::max(worst_, d.rel);
    agree_ += d.agree;
    ++rows_;
    if (same_) {
      const std::vector<float> alone = same_->last(seq);
      const double r = diff_row(got, alone.data(), lm_.n_vocab()).rel;
      EXPECT_LT(r, same_rel_) << label_ << ": against the same pass alone, sequence" << ids;
      worst_same_ = std::max(worst_same_, r);
    }
  }

  BatchedLm& lm_;
  Oracle& oracle_;
  Tolerance tol_;
  std::string label_;
  std::vector<std::vector<int32_t>> fed_;
  Oracle* same_;
  double same_rel_;
  double worst_ = 0, worst_same_ = 0;
  int agree_ = 0, rows_ = 0;
};

std::vector<int32_t> toks(std::initializer_list<int32_t> l) { return l; }

// Mixed prompt chunks and decode tokens on several slots, then truncate + re-feed and a shared
// prefix copied to another slot, each pass checked row by row against the oracle.
void exercise(BatchedLm& lm, Oracle& oracle, Tolerance tol, const std::string& label, Oracle* same_path = nullptr,
              double same_path_rel = 0) {
  ASSERT_EQ(lm.slots(), kSlots);
  ASSERT_EQ(lm.max_context(), int64_t(kContext));
  Checker c(lm, oracle, tol, label, same_path, same_path_rel);
  // Prompts of different lengths in one pass, out of slot order, slot 3 idle.
  c.step({{2, toks({1, 17, 300, 5, 91})}, {0, toks({7})}, {1, toks({44, 2, 65})}});
  // Decode for all three plus a prompt on slot 3.
  c.step({{0, toks({12})}, {1, toks({100})}, {2, toks({3})}, {3, toks({9, 8, 7, 6, 5, 4, 3, 2})}});
  for (int32_t t = 0; t < 3; ++t)
    c.step({{3, toks({t + 20})}, {2, toks({t + 30})}, {1, toks({t + 40})}, {0, toks({t + 50})}});
  // A prompt chunk next to decode tokens.
  c.step({{1, toks({200, 201, 202, 203})}, {0, toks({60})}});
  // Regenerate: drop slot 2's last 4 tokens and feed others.
  c.truncate(2, 4);
  c.step({{2, toks({77, 78})}, {3, toks({79})}});
  // Empty slot 0 and start afresh.
  c.truncate(0, 0);
  c.step({{0, toks({5, 6})}});
  // Slot 1's first 6 tokens become slot 0's prompt; both continue.
  c.copy_prefix(1, 0, 6);
  c.step({{0, toks({150})}, {1, toks({151})}});
  c.step({{0, toks({152, 153})}, {3, toks({154})}});
  c.finish();

  // Bad arguments: nothing is fed.
  std::vector<float> out;
  const std::vector<int32_t> one = {1};
  std::vector<int32_t> too_long(size_t(kContext), 1);
  const std::vector<int32_t> none;
  const int64_t past0 = lm.n_past(0);
  auto bad = [&](std::vector<SequenceChunk> cs, const char* what) {
    EXPECT_THROW(lm.forward(cs, out), std::invalid_argument) << what;
  };
  bad({{kSlots, one}}, "slot past the last");
  bad({{-1, one}}, "negative slot");
  bad({{0, one}, {0, one}}, "slot twice");
  bad({{0, too_long}}, "past max_context");
  bad({{1, none}}, "empty chunk");
  const std::vector<int32_t> oov = {int32_t(lm.n_vocab())};
  bad({{1, one}, {0, oov}}, "token outside the vocabulary");
  EXPECT_EQ(lm.n_past(0), past0);
  EXPECT_THROW(lm.truncate(0, past0 + 1), std::invalid_argument);
  EXPECT_THROW(lm.truncate(kSlots, 0), std::invalid_argument);
  EXPECT_THROW(lm.copy_prefix(0, 0, 1), std::invalid_argument);
  EXPECT_THROW(lm.copy_prefix(0, 1, past0 + 1), std::invalid_argument);
  EXPECT_THROW(lm.copy_prefix(0, kSlots, 1), std::invalid_argument);
  EXPECT_THROW(lm.n_past(kSlots), std::invalid_argument);
}

modelgen::Deepseek2Options shape_options(const Shape& s) {
  modelgen::Deepseek2Options o = base_options();
  s.tweak(o);
  return o;
}

// Per layer, every routed expert on the GPU (empty for dense layers).
std::vector<std::vector<uint8_t>> all_experts_on_gpu(const Shape& s) {
  const modelgen::Deepseek2Options o = shape_options(s);
  std::vector<std::vector<uint8_t>> masks(size_t(o.layers));
  for (int64_t il = o.n_dense; il < o.layers; ++il) masks[size_t(il)].assign(size_t(o.n_experts), 1);
  return masks;
}

LoadedModel load(const std::string& file, ComputePath path, ModelLoadOptions lo = {}) {
  lo.path = path;
  lo.max_context = kContext;
  lo.sequences = kSlots;
  lo.threads = 2;
  return load_model(file, lo);
}

class BatchedPasses : public ::testing::TestWithParam<Shape> {};

TEST_P(BatchedPasses, ReferenceMatchesSingleSequence) {
  const std::string file = generate(GetParam());
  Oracle oracle(file);
  LoadedModel m = load(file, ComputePath::Reference);
  ASSERT_NE(m.batched, nullptr);
  exercise(*m.batched, oracle, {1e-4, 1.0}, std::string(GetParam().name) + " reference");
}

// The faster passes against the reference: 8-bit activations (and on the GPU F16 caches and
// weights) land at 0.02-0.05 relative L2 on most rows; a near-tie in the router that flips moves
// a row further: the single-sequence CPU pass itself is at 0.18 on one sequence of v3_style_q8
// (measured), so the reference bound is loose and the same pass fed each sequence alone is the
// tight oracle of what batching changes.
constexpr Tolerance kFastPass{0.25, 0.8};
constexpr double kSamePass = 0.05;

TEST_P(BatchedPasses, CpuMatchesSingleSequenceReference) {
  const std::string file = generate(GetParam());
  Oracle oracle(file), alone(file, ComputePath::Cpu);
  LoadedModel m = load(file, ComputePath::Cpu);
  ASSERT_NE(m.batched, nullptr);
  exercise(*m.batched, oracle, kFastPass, std::string(GetParam().name) + " cpu", &alone, kSamePass);
}

// The hybrid pass on its main plans: routed experts on the CPU engine, every expert on the GPU,
// and a mixed one (CPU attention between GPU layers, the head on the CPU). The GPU adds an F16
// latent cache and F16-widened weights (its tolerance in generated_models_test).
TEST_P(BatchedPasses, GpuMatchesSingleSequenceReference) {
  if (gpu::GpuDevice::list().empty()) GTEST_SKIP() << "no Vulkan device";
  const Shape& shape = GetParam();
  const std::string file = generate(shape);
  const modelgen::Deepseek2Options o = shape_options(shape);
  Oracle oracle(file);
  struct Plan {
    const char* name;
    ModelLoadOptions lo;
    uint32_t decode_submits;  // a decode pass of every slot
  };
  std::vector<Plan> plans(3);
  plans[0].name = "cpu experts";
  plans[0].decode_submits = uint32_t(2 * (o.layers - o.n_dense) + 1);
  plans[1].name = "gpu experts";
  plans[1].lo.gpu_experts = all_experts_on_gpu(shape);
  plans[1].decode_submits = 1;
  plans[2].name = "cpu attention and head";
  plans[2].lo.attention_device = {0, -1, 0};
  plans[2].lo.ffn_device = {0, 0, -1};
  plans[2].lo.output_device = -1;
  plans[2].decode_submits = 0;  // not checked
  for (const Plan& plan : plans) {
    LoadedModel m = load(file, ComputePath::Gpu, plan.lo);
    ASSERT_NE(m.batched, nullptr);
    const std::string label = std::string(shape.name) + " gpu, " + plan.name;
    Oracle alone(file, ComputePath::Gpu, plan.lo);
    exercise(*m.batched, oracle, kFastPass, label, &alone, kSamePass);
    // Record once, replay: every slot decoding one token is one recorded pass that submits what
    // a single sequence's decode step does.
    auto* hybrid = dynamic_cast<Deepseek2Hybrid*>(m.lm.get());
    ASSERT_NE(hybrid, nullptr);
    for (int s = 0; s < kSlots; ++s) m.batched->truncate(s, 2 + s);
    std::vector<std::vector<int32_t>> next(kSlots);
    std::vector<SequenceChunk> cs;
    for (int s = 0; s < kSlots; ++s) {
      next[size_t(s)] = {int32_t(30 + s)};
      cs.push_back({s, next[size_t(s)]});
    }
    std::vector<float> out;
    m.batched->forward(cs, out);
    m.batched->forward(cs, out);
    if (plan.decode_submits) {
      EXPECT_EQ(hybrid->last_step_times().submits, plan.decode_submits) << label;
    }
    EXPECT_GT(hybrid->kv_cache_bytes(), 0u);
  }
}

// Passes of at most max_batch rows: chunks longer than the rest of a pass spread over several.
TEST_P(BatchedPasses, GpuSplitsLongChunksOverPasses) {
  if (gpu::GpuDevice::list().empty()) GTEST_SKIP() << "no Vulkan device";
  const Shape& shape = GetParam();
  const std::string file = generate(shape);
  Oracle oracle(file);
  auto gguf = GgufFile::open(file);
  const Deepseek2Weights w = Deepseek2Weights::from_gguf(*gguf);
  Deepseek2HybridOptions ho;
  ho.max_context = kContext;
  ho.sequences = kSlots;
  ho.max_batch = 4;
  ho.gpu_experts = all_experts_on_gpu(shape);
  Deepseek2Hybrid hybrid(w, nullptr, ho);
  exercise(hybrid, oracle, kFastPass, std::string(shape.name) + " gpu, 4-row passes");
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchedPasses, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Shape>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace tandem
