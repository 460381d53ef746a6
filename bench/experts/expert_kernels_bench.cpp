// Row-dot kernels per type and ISA on one expert-sized matrix that stays in L2: weight bytes per
// second when memory is not the limit. Example: bench_expert_kernels --benchmark_filter=q4_K
#include <benchmark/benchmark.h>

#include <vector>

#include "experts/activation_blocks.h"
#include "experts/aligned_buffer.h"
#include "experts/kernels/repacked.h"
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

// The repacked prefill tile: 16-row groups x 8 tokens over the same matrix shape; the counter
// is multiply-adds per second (one token of one row = kCols MACs).
void repacked_tile(benchmark::State& state, GgmlType type) {
  const RepackedTileFn tile = repacked_tile_kernel(type, CpuIsa::Avx512);
  if (!tile) return state.SkipWithError("no avx512 tile for this type or CPU");
  const RepackedFormat& f = *repacked_format(type);
  const int64_t row_bytes = int64_t(ggml_row_bytes(type, kCols));
  std::vector<uint8_t> w(static_cast<size_t>(row_bytes * kRows));
  fill_random_blocks(type, w.data(), kRows, kCols, 1);
  AlignedBuffer packed, act;
  packed.reserve(size_t(f.bytes(kRows, kCols)));
  f.repack(w.data(), row_bytes, kRows, kCols, packed.as<uint8_t>());
  const int64_t act_bytes = activation_row_bytes(ActFormat::Q8K, kCols);
  act.reserve(size_t(act_bytes * kRepackMaxTokens));
  std::vector<float> x(kCols, 0.5f), sums(size_t(kCols / 32 * kRepackMaxTokens));
  const void* acts[kRepackMaxTokens];
  const float* sum_rows[kRepackMaxTokens];
  for (int t = 0; t < kRepackMaxTokens; ++t) {
    quantize_activation_row(ActFormat::Q8K, x.data(), act.as() + t * act_bytes, kCols);
    acts[t] = act.as() + t * act_bytes;
    q8k_sub_block_sums(acts[t], kCols, sums.data() + t * kCols / 32);
    sum_rows[t] = sums.data() + t * kCols / 32;
  }
  float out[kRepackMaxTokens * kRepackRows];
  for (auto _ : state) {
    for (int64_t g = 0; g < kRows / kRepackRows; ++g) {
      tile(packed.as<uint8_t>() + g * f.group_bytes(kCols), kCols, acts, sum_rows, kRepackMaxTokens, out);
      benchmark::DoNotOptimize(out);
    }
  }
  state.counters["MAC/s"] = benchmark::Counter(double(state.iterations()) * kRows * kCols * kRepackMaxTokens,
                                               benchmark::Counter::kIsRate);
}

void register_all() {
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    benchmark::RegisterBenchmark(("repacked_tile/" + std::string(ggml_type_name(t)) + "/tokens:8").c_str(),
                                 repacked_tile, t);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0,
                     GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::BF16, GgmlType::F16, GgmlType::IQ4_XS,
                     GgmlType::IQ1_S, GgmlType::IQ1_M, GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
                     GgmlType::IQ3_XXS, GgmlType::IQ3_S})
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
