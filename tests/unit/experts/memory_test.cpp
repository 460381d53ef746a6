// expert_layer_memory (what the plan counts on the host for a layer's experts) against what the
// engine holds after add_layer (MoeEngine::host_bytes), for the layouts of each ISA: repacked
// K-quants (their mapped source dropped, or kept), AMX tiles beside the GGUF bytes, Q5_0 downs
// converted to Q8_0 for AMX, plain row kernels.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <random>

#include "experts/expert_memory.h"
#include "experts/moe_engine.h"
#include "tests/unit/experts/random_weights.h"

namespace tandem {
namespace {

using experts::CpuIsa;

// The layer's bytes in a read-only file mapping, as the GGUF mmap gives them (releasing mapped
// pages is only allowed there).
struct MappedLayer {
  MoeLayerWeights w{};
  void* map = nullptr;
  size_t bytes = 0;
  explicit MappedLayer(const test::RandomLayer& L) {
    char path[] = "/tmp/tandem-memory-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return;
    std::remove(path);
    bytes = L.gate.size() + L.up.size() + L.down.size();
    for (const auto* part : {&L.gate, &L.up, &L.down})
      if (write(fd, part->data(), part->size()) != ssize_t(part->size())) return;
    map = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
      map = nullptr;
      return;
    }
    w = L.weights;
    w.gate = static_cast<const uint8_t*>(map);
    w.up = w.gate + L.gate.size();
    w.down = w.up + L.up.size();
  }
  ~MappedLayer() {
    if (map) munmap(map, bytes);
  }
};

struct Case {
  GgmlType gate_up, down;
  int64_t hidden, ffn;
};

void check(CpuIsa isa, const Case& c, bool release, const std::vector<uint8_t>& owned) {
  const auto& L = test::cached_layer(c.gate_up, c.down, 4, c.hidden, c.ffn, 5);
  MappedLayer m(L);
  ASSERT_NE(m.map, nullptr);
  MoeEngineOptions o;
  o.isa = isa;
  o.threads_per_node = 2;
  o.release_mapped_sources = release;
  MoeEngine engine(o);
  const int layer = engine.add_layer(m.w, owned);
  ExpertMemoryOptions mo;
  mo.isa = isa;
  mo.release_mapped_sources = release;
  const ExpertLayerMemory want = expert_layer_memory(c.gate_up, c.gate_up, c.down, c.hidden, c.ffn, mo);
  const ExpertMatrixMemory got = engine.host_bytes(layer);
  const int64_t n = engine.owned_experts(layer);
  EXPECT_EQ(got.owned, n * (want.gate.owned + want.up.owned + want.down.owned));
  EXPECT_EQ(got.mapped, n * (want.gate.mapped + want.up.mapped + want.down.mapped));
  EXPECT_EQ(want.file_bytes, engine.expert_bytes(layer));
  // A note exactly where the host holds more than the file.
  EXPECT_EQ(!want.note.empty(), want.per_expert() > want.file_bytes) << want.note;
}

const Case kCases[] = {
    {GgmlType::Q4_K, GgmlType::Q4_K, 512, 256},  // V3: everything repacked
    {GgmlType::Q4_K, GgmlType::Q5_0, 512, 352},  // V2-Lite: Q5_0 downs (AMX: + a Q8_0 copy)
    {GgmlType::Q6_K, GgmlType::Q6_K, 256, 256},
    {GgmlType::Q8_0, GgmlType::Q8_0, 256, 128},  // no vpdpbusd layout; AMX tiles
    {GgmlType::Q4_0, GgmlType::Q4_0, 256, 128},
};

TEST(ExpertMemory, PredictionMatchesTheEngine) {
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512, CpuIsa::Amx}) {
    if (!experts::cpu_supports(isa)) continue;
    for (const Case& c : kCases)
      for (bool release : {true, false}) {
        SCOPED_TRACE(std::string(experts::cpu_isa_name(isa)) + " " + std::string(ggml_type_name(c.gate_up)) + "/" +
                     std::string(ggml_type_name(c.down)) + (release ? " release" : " keep"));
        check(isa, c, release, {});
        check(isa, c, release, {1, 0, 1, 1});
      }
  }
}

// The layouts that replace the GGUF bytes cost at most a few percent more; the AMX copy of
// Q5_0 downs costs much more and says which knob avoids it.
TEST(ExpertMemory, NotesNameTheKnob) {
  ExpertMemoryOptions o;
  o.isa = CpuIsa::Avx512;
  const auto v3 = expert_layer_memory(GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q4_K, 7168, 2048, o);
  EXPECT_EQ(v3.gate.mapped + v3.up.mapped + v3.down.mapped, 0);
  EXPECT_LE(double(v3.per_expert()), 1.07 * double(v3.file_bytes));
  EXPECT_NE(v3.note.find("TANDEM_PREFILL_REPACK=0"), std::string::npos);
  o.isa = CpuIsa::Amx;
  const auto v2 = expert_layer_memory(GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q5_0, 2048, 1408, o);
  EXPECT_EQ(v2.down.mapped, int64_t(ggml_row_bytes(GgmlType::Q5_0, 1408)) * 2048);
  EXPECT_GT(v2.down.owned, v2.down.mapped * 3 / 2);
  EXPECT_NE(v2.note.find("TANDEM_AMX_LEGACY=0"), std::string::npos);
  o.isa = CpuIsa::Avx2;  // row kernels on the mapped bytes: the file, no note
  const auto rows = expert_layer_memory(GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q5_0, 2048, 1408, o);
  EXPECT_EQ(rows.per_expert(), rows.file_bytes);
  EXPECT_TRUE(rows.note.empty());
}

}  // namespace
}  // namespace tandem
