// The CPU engine for the routed experts of MoE layers. Weights stay where the GGUF mmap put them
// (or in node-local copies on multi-node machines); activations are quantized per row so that
// every dot product runs on the integer kernels of experts/kernels.
//
//   y[t] = sum_k weights[t,k] * down_e(silu(gate_e x[t]) * up_e x[t]),   e = ids[t,k]
//
// One forward is one parallel job per NUMA node: quantize x, gate+up+SiLU for the experts the
// node owns (row tiles x token blocks, so weight rows stay in cache while tokens stream), then
// down with the weighted sum; partial sums of the nodes are added at the end.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "experts/cpu_isa.h"
#include "experts/cpu_topology.h"
#include "experts/expert_memory.h"
#include "runtime/core/load_progress.h"
#include "runtime/quant/ggml_type.h"

namespace tandem {

struct MoeLayerWeights {  // one layer, as stored in GGUF: 3-D tensors
  GgmlType gate_type, up_type, down_type;
  const uint8_t* gate;  // mmapped, read-only: never written
  const uint8_t* up;
  const uint8_t* down;
  int64_t n_experts, hidden, ffn;  // gate/up: per expert [ffn rows x hidden cols]; down: [hidden x ffn]
};

struct MoeEngineOptions {
  int threads_per_node = 0;        // 0: one per physical core of the node
  int reserved_cores = 0;          // first cores of the first node kept free (GPU feeder thread)
  bool use_smt = false;            // also run threads on hyper-thread siblings
  bool pin_threads = true;         // pin each worker to its PU
  int max_nodes = 0;               // 0: every NUMA node with CPUs; n: the first n
  bool replicate_experts = false;  // every node keeps all experts (n x memory) instead of a shard
  // Copy the experts into engine-owned huge-page memory even on one node (multi-node machines
  // always copy to place them). Costs the copy's memory and load time; saves TLB misses.
  bool copy_weights = false;
  // The weights are a read-only file mapping (the GGUF mmap): a layer that runs from its
  // repacked copy at every token count drops the mapped pages it was repacked from
  // (MADV_DONTNEED), so resident memory holds those bytes once. Never for other memory: on
  // anonymous memory MADV_DONTNEED would zero it.
  bool release_mapped_sources = false;
  // Prefill layout: also keep the K-quant experts (Q4_K, Q5_K, Q6_K) repacked (16 rows
  // interleaved, nibble planes; about 1.01-1.06x their GGUF size in extra engine-owned memory) so
  // that experts with many tokens in a forward run the register-blocked vpdpbusd kernel
  // (experts/kernels/repacked.h). Needs the avx512 ISA; other types and ISAs keep the row kernels.
  // Unset: TANDEM_PREFILL_REPACK=0/1 decides if set, otherwise on for avx512 while the layer's
  // extra bytes fit in memory (see repack_memory_rule in moe_engine.cpp; logged on stderr).
  std::optional<bool> repack_for_prefill;
  // Which kernels run experts with several tokens. Auto: the repacked tile from
  // kRepackMinTokens tokens where a layout exists, else dequantize + OpenBLAS sgemm from
  // blas_min_tokens, else the row kernels. The others force one path wherever it applies
  // (tests, benchmarks; TANDEM_PREFILL_PATH=rows|repacked|blas sets it when left at Auto).
  enum class PrefillPath { Auto, RowKernels, Repacked, Blas };
  PrefillPath prefill_path = PrefillPath::Auto;
  // Auto: experts with at least this many tokens (and no repacked layout) use dequantize +
  // sgemm. 0: the measured default (moe_engine.cpp); TANDEM_BLAS_MIN_TOKENS overrides.
  int64_t blas_min_tokens = 0;
  std::optional<experts::CpuIsa> isa;  // default: experts::selected_cpu_isa()
  // Tests: plan pools on this hwloc synthetic topology (threads then run unpinned, weights are
  // not copied). Empty: this machine.
  std::string synthetic_topology;
  // Load progress: add_layer reports the as-stored bytes of the experts it owns as it copies or
  // repacks them (from the repack threads too). Empty: no reports.
  LoadBytesFn on_load_bytes;
};

class MoeEngine {
 public:
  explicit MoeEngine(MoeEngineOptions options = {});
  ~MoeEngine();
  MoeEngine(const MoeEngine&) = delete;
  MoeEngine& operator=(const MoeEngine&) = delete;

  // Checks shapes and types (Error names the problem) and returns the layer's index.
  // owned: which experts this engine computes (n_experts entries, nonzero = owned; empty: all).
  // The others (placed on a GPU, say) are never read, copied or repacked, and get no memory;
  // forward skips their (token, slot) pairs, so y holds the owned experts' part of the sum.
  // nodes: per expert the NUMA node (OS index) whose pool must own it, or -1 to shard it with
  // the others (empty: shard all); a node without a pool is an Error. Not with replicate_experts.
  int add_layer(const MoeLayerWeights& weights, const std::vector<uint8_t>& owned = {},
                const std::vector<int>& nodes = {});

  // y[t*hidden..] = sum_k weights[t*k_used+k] * expert(ids[t*k_used+k], x[t]); y is overwritten.
  // x: [n_tokens x hidden]. Throws Error for an expert id out of range (before any work).
  void forward(int layer, const float* x, int64_t n_tokens, const int32_t* ids, const float* weights,
               int k_used, float* y);

  experts::CpuIsa isa() const;
  int n_nodes() const;                                  // worker pools, one per NUMA node
  const std::vector<experts::NumaNodeCpus>& pools() const;
  int total_threads() const;
  // Pool index that computes expert e of a layer in sharded mode (-1 when replicated,
  // kNotOwned when the layer's mask leaves the expert to someone else).
  static constexpr int kNotOwned = -2;
  int expert_pool(int layer, int64_t expert) const;
  // Experts of a layer the engine computes (its mask's count).
  int64_t owned_experts(int layer) const;
  // Bytes of expert weights (gate+up+down) of one expert of a layer, as stored.
  int64_t expert_bytes(int layer) const;
  // Engine-owned bytes of the prefill layout of a layer (0 when it has none).
  int64_t repacked_bytes(int layer) const;
  // Host memory of a layer's experts: engine-owned (copies, layouts) and GGUF bytes still read
  // from the mapping. expert_layer_memory (expert_memory.h) predicts it from the header.
  ExpertMatrixMemory host_bytes(int layer) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One token through one expert with the scalar kernels and the engine's activation quantization:
// out[hidden] = down(silu(gate x) * up x). The reference the SIMD paths are compared with.
void run_expert_scalar(const MoeLayerWeights& weights, int64_t expert, const float* x, float* out);
// The same in fp32 from dequantize_row, without activation quantization (the accuracy oracle).
void run_expert_f32(const MoeLayerWeights& weights, int64_t expert, const float* x, float* out);

}  // namespace tandem
