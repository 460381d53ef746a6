// deepseek2 on a GPU with the routed experts on the CPU, or some or all of them on the GPU:
// embeddings lookup happens on the host, then attention (MLA, latent KV cache), dense layers,
// router and shared experts run as Vulkan kernels. At each MoE layer with CPU experts the GPU
// segment ends right after routing (ids, weights and the normed input land in host-visible
// memory); the shared experts and the layer's GPU-resident routed experts are a separate command
// sequence submitted behind it, so the GPU runs them while the CPU computes its routed experts
// into host-visible memory; the next segment (queued behind, no host wait) adds those to the
// residual in the same pass as the next RMSNorm. A layer whose routed experts all live on the
// GPU does not end a segment: with every layer so, a step is one submission. Each segment is
// recorded once per batch size and replayed (the decode step is recorded once).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/load_progress.h"
#include "runtime/gpu/kv_cache_type.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

struct Deepseek2HybridOptions {
  uint32_t gpu_index = 0;
  uint32_t max_context = 4096;  // KV cache rows per layer
  gpu::KvCacheType kv_type = gpu::KvCacheType::F16;  // latent KV cache elements (BF16: F32's range)
  uint32_t max_batch = 256;     // tokens per GPU pass; longer prompts run in chunks
  bool profile = false;         // per-kernel timestamps (see profile_report())
  // Routed experts that live and run on the GPU, per layer (indexed by layer; a missing or empty
  // entry: none): n_expert entries, nonzero = on the GPU. Only those experts' weights are
  // uploaded. The RoutedExperts handed to the constructor must skip them (CpuRoutedExperts built
  // with the same masks). A layer with every expert here runs without a host round trip.
  std::vector<std::vector<uint8_t>> gpu_experts;
  // Load progress: the file bytes of each weight as it goes up to the GPU. Empty: no reports.
  LoadBytesFn on_load_bytes;
};

// Where the host's time of the last forward() went (steady_clock; the GPU's own time is
// last_gpu_milliseconds() with profiling on).
struct HybridStepTimes {
  double wall_ms = 0;
  double gpu_wait_ms = 0;   // blocked on GPU fences (GPU work not hidden behind the CPU's)
  double experts_ms = 0;    // routed experts on the CPU
  double host_ms = 0;       // everything else: embeddings, recording, submits, logits copy
  uint32_t submits = 0;     // command sequences submitted
  uint32_t dispatches = 0;  // compute dispatches in them
};

class Deepseek2Hybrid : public CausalLm {
 public:
  Deepseek2Hybrid(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts,
                  const Deepseek2HybridOptions& options);
  ~Deepseek2Hybrid() override;

  int64_t n_vocab() const override;
  int64_t n_past() const override;
  void reset() override;
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;

  // Places the next token at position n_past without computing the ones before it (decode timing
  // at a given context length: attention reads rows 0..n_past of the cache whatever they hold).
  void seek(int64_t n_past);
  std::string device_name() const;
  uint64_t device_bytes() const;       // GPU memory held: weights, cache, activations
  std::string profile_report() const;  // per-kernel GPU time of the last forward (profile on)
  double last_gpu_milliseconds() const;  // sum of the last forward's kernel times (profile on)
  const HybridStepTimes& last_step_times() const;
  // Turns per-kernel timestamps on or off (re-records the steps; timestamps cost wall time).
  void set_profile(bool on);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tandem
