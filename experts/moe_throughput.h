// Throughput of MoeEngine::forward on a synthetic layer (random blocks of a given type), for
// `tandem bench experts` and the benchmark programs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "experts/moe_engine.h"

namespace tandem::experts {

struct MoeBenchConfig {
  GgmlType type = GgmlType::Q4_K;  // gate, up and down
  std::optional<GgmlType> down_type;  // down's type when it differs (V2-Lite: Q5_0 down, ffn 1408)
  int64_t hidden = 7168, ffn = 2048, n_experts = 8;
  int k_used = 8;                  // capped at n_experts
  std::vector<int64_t> token_counts = {1, 4, 64, 512};
  double min_seconds = 0.5;        // per token count, after one warm-up forward
  int layers = 1;                  // forwards rotate over this many layers (defeats large caches)
  uint32_t seed = 1;
  // Sleep between timed forwards (the GPU's attention between two MoE layers in hybrid decode):
  // the workers then wait as they do in a real decode step. 0: back to back.
  double gap_us = 0;
};

struct MoeBenchResult {
  int64_t tokens = 0;
  int64_t active_experts = 0;   // distinct experts the routing touched
  double seconds_per_forward = 0;
  double tokens_per_s = 0;
  double weight_gb_per_s = 0;   // bytes of the active experts' weights / time
};

// Writes blocks with random quants and sane random scales (no NaN/inf) for `type`.
void fill_random_blocks(GgmlType type, uint8_t* dst, int64_t rows, int64_t cols, uint32_t seed);

// Builds an engine with `options`, adds the synthetic layer and times forward per token count.
std::vector<MoeBenchResult> run_moe_bench(const MoeEngineOptions& options, const MoeBenchConfig& config);

}  // namespace tandem::experts
