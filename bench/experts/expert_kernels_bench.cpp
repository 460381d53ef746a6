// Row-dot kernels per type and ISA on one expert-sized matrix that stays in L2: weight bytes per
// second when memory is not the limit. Example: bench_expert_kernels --benchmark_filter=q4_K
#include <benchmark/benchmark.h>

#include <vector>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/row_dot.h"
#include "experts/moe_throughput.h"

namespace tandem::experts {
namespace {

constexpr int64_t kCols = 7168, kRows = 64;

void row_dot(benchmark::State& state, GgmlType type, CpuIsa isa, int tokens) {
  if (!cpu_supports(isa)) return state.SkipWithError("CPU lacks this ISA");
  const int64_t row_bytes = int64_t(ggml_row_bytes(type, kCols));
  std::vector<uint8_t> w(static_cast<size_t>(row_bytes * kRows));
  fill_random_blocks(type, w.data(), kRows, kCols, 1);
  const ActFormat fmt = activation_format(type);
  const int64_t act_bytes = activation_row_bytes(fmt, kCols);
  AlignedBuffer act;
  act.reserve(size_t(act_bytes * tokens));
  std::vector<float> x(kCols, 0.5f);
  std::vector<const void*> acts;
  for (int t = 0; t < tokens; ++t) {
    quantize_activation_row(fmt, x.data(), act.as() + t * act_bytes, kCols);
    acts.push_back(act.as() + t * act_bytes);
  }
  const RowDotManyFn many = row_dot_many_kernel(type, isa);
  std::vector<float> out(static_cast<size_t>(tokens));
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) {
      many(kCols, w.data() + r * row_bytes, acts.data(), tokens, out.data());
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * row_bytes * kRows);
  state.counters["tokens"] = tokens;
}

void register_all() {
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0,
                     GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::BF16, GgmlType::F16})
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
      for (int tokens : {1, 4, 32}) {
        const std::string name = std::string(ggml_type_name(t)) + "/" + std::string(cpu_isa_name(isa)) +
                                 "/tokens:" + std::to_string(tokens);
        benchmark::RegisterBenchmark(name.c_str(), row_dot, t, isa, tokens);
      }
}

const int registered = (register_all(), 0);

}  // namespace
}  // namespace tandem::experts

BENCHMARK_MAIN();
