// One MoE layer's experts in the AMX layout (amx_layout.h), and the prefill work on them: gate+up
// +SiLU and down for an expert's tokens, 16 tokens x 16 rows per tile. MoeEngine builds one when
// its ISA is Amx and hands it experts with at least min_tokens() tokens; fewer keep the avx512 row
// kernels on the GGUF bytes (decode streams the smaller as-stored bytes faster).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "experts/kernels/amx_layout.h"
#include "experts/moe_engine.h"
#include "experts/node_memory.h"

namespace tandem::experts {

// Experts with fewer tokens in a forward use the row kernels. TANDEM_AMX_MIN_TOKENS overrides.
int64_t amx_min_tokens();
// Whether the engine gives a weight type the AMX layout. BF16, F16, Q8_0: yes (8-11x the avx512
// row kernels at 64-512 tokens for BF16). Q4_K and Q6_K (amx_format has them) only with
// TANDEM_AMX_KQUANTS=1: measured, their int8 tiles beat the vpdpbusd repacked layout by just
// 1.05-1.1x at 64-512 tokens and lose at 16-32, while taking 2.2x memory instead of ~1.05x and
// taking decode off the repacked tile (bench/README.md, AMX).
bool amx_takes(GgmlType type);

class AmxLayer {
 public:
  // gate_at/up_at/down_at: per pool, per expert, where that pool reads the matrix (null: not its
  // expert); pool_nodes: NUMA node of each pool's copies (-1: unbound). Repacks in parallel.
  // emulated: run the amx_emulated kernels (tests on CPUs without AMX).
  AmxLayer(const MoeLayerWeights& w, const std::vector<std::vector<const uint8_t*>>& gate_at,
           const std::vector<std::vector<const uint8_t*>>& up_at,
           const std::vector<std::vector<const uint8_t*>>& down_at, const std::vector<int>& pool_nodes,
           bool emulated = false);
  ~AmxLayer();

  bool has_up() const { return up_fmt_.has_value(); }
  bool has_down() const { return down_fmt_.has_value(); }
  int64_t extra_bytes() const { return extra_bytes_; }
  int64_t min_tokens() const { return min_tokens_; }

  // Rows [r0, r1) of gate and up of expert e for its n pairs: tokens[j] indexes x_act rows
  // (x_row bytes apart, in the gate type's activation format); h[j * ffn + r] = silu(g) * u.
  // Returns false (nothing done) when the layer has no AMX gate/up or n < min_tokens().
  bool up(int pool, int32_t e, int64_t r0, int64_t r1, const int32_t* tokens, int64_t n, const uint8_t* x_act,
          int64_t x_row, float* h) const;
  // Rows [r0, r1) of down of expert e for its n pairs: h_act rows (h_row bytes apart, the down
  // type's activation format); out[tokens[j] * hidden + r] += weights[j] * down(h_j)[r].
  bool down(int pool, int32_t e, int64_t r0, int64_t r1, const uint8_t* h_act, int64_t h_row, int64_t n,
            const int32_t* tokens, const float* weights, float* out) const;

 private:
  MoeLayerWeights w_;
  std::optional<AmxFormat> up_fmt_, down_fmt_;
  bool emulated_;
  int64_t min_tokens_, extra_bytes_ = 0;
  std::vector<std::vector<const uint8_t*>> gate_, up_, down_;  // per pool, per expert
  std::vector<std::unique_ptr<NodeMemory>> memory_;
};

}  // namespace tandem::experts
