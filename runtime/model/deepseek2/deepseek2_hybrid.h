// deepseek2's layer program for the step scheduler (runtime/engine/step_scheduler): every part of
// a layer (attention with its latent KV cache, dense FFN, router + shared experts, the head) on
// the GPU or on the CPU the options give it, routed experts on the CPU engine or resident on
// their layer's GPU. The program is plain steps: GPU parts recorded as kernels, CPU parts on
// Deepseek2Cpu's kernels, "routed experts of layer L" with the shared experts and the layer's GPU
// experts as the GPU work that overlaps them. Embeddings are looked up on the host. A CPU
// expert layer's output is added to the residual in the same pass as the next RMSNorm. The
// scheduler owns devices, transfers, overlap, record-once/replay and the step timing; with
// every part on one GPU and the experts on the CPU a step submits what the hard-wired pass did
// (two sequences per MoE layer with CPU experts, one more for the head; one in all when every
// expert is on the GPU).
//
// As a BatchedLm it holds `sequences` latent caches (slots, max_context rows each, per layer): a
// pass runs every row of every chunk through the matrices, router and experts together, the KV
// store and attention per chunk over its slot's cache rows at per-row positions (a positions
// buffer the host writes each pass), and the head for each chunk's last row only. A recording is
// kept per batch layout (chunk slots and lengths), so N sequences decoding one token each replay
// one recorded pass. The CausalLm side is slot 0 and records as before (one layout per size).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/load_progress.h"
#include "runtime/engine/step_scheduler.h"
#include "runtime/gpu/kv_cache_type.h"
#include "runtime/model/batched_lm.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

struct Deepseek2HybridOptions {
  static constexpr int kOnCpu = sched::kCpu;
  uint32_t gpu_index = 0;  // the device of every part the fields below leave unset
  // Per layer (missing entries: gpu_index): the device of the layer's attention (and its KV
  // cache) and of its FFN part (the dense FFN, or the router and shared experts): a Vulkan
  // device index or kOnCpu (Deepseek2Cpu's kernels).
  std::vector<int> attention_device, ffn_device;
  int output_device = -2;  // the head (output_norm, output); -2: gpu_index
  int cpu_threads = 0;     // threads of the CPU layer parts (0: every core)
  uint32_t max_context = 4096;  // KV cache rows per layer (per sequence slot)
  uint32_t sequences = 1;       // sequence slots (BatchedLm), each its own KV cache
  gpu::KvCacheType kv_type = gpu::KvCacheType::F16;  // latent KV cache elements (BF16: F32's range)
  uint32_t max_batch = 256;     // tokens per GPU pass; longer prompts run in chunks
  bool profile = false;         // per-kernel timestamps (see profile_report())
  // Routed experts that live and run on the GPU, per layer (indexed by layer; a missing or empty
  // entry: none): n_expert entries, nonzero = on the GPU. Only those experts' weights are
  // uploaded. The RoutedExperts handed to the constructor must skip them (CpuRoutedExperts built
  // with the same masks). A layer with every expert here runs without a host round trip.
  std::vector<std::vector<uint8_t>> gpu_experts;
  // The weights are views of a read-only file mapping (the GGUF mmap): after a matrix goes up to
  // a GPU its mapped pages are dropped (MADV_DONTNEED; they stay in the page cache, reclaimable,
  // and fault back in if read again), so resident memory does not hold GPU-placed bytes. Never
  // for other memory: on anonymous memory MADV_DONTNEED would zero it.
  bool release_mapped_uploads = false;
  // Load progress: the file bytes of each weight as it goes up to the GPU. Empty: no reports.
  LoadBytesFn on_load_bytes;
};

// Where the host's time of the last forward() went (the GPU's own time is
// last_gpu_milliseconds() with profiling on).
using HybridStepTimes = sched::StepTimes;

class Deepseek2Hybrid : public CausalLm, public BatchedLm {
 public:
  Deepseek2Hybrid(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts,
                  const Deepseek2HybridOptions& options);
  ~Deepseek2Hybrid() override;

  int64_t n_vocab() const override;
  int64_t n_past() const override;
  void reset() override;
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;

  // BatchedLm
  int slots() const override;
  int64_t max_context() const override;
  int64_t n_past(int slot) const override;
  void truncate(int slot, int64_t n) override;
  void copy_prefix(int src, int dst, int64_t n) override;
  void forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) override;
  // Bytes of the latent KV caches on the GPUs (every slot, every GPU layer).
  uint64_t kv_cache_bytes() const;

  // Places the next token at position n_past without computing the ones before it (decode timing
  // at a given context length: attention reads rows 0..n_past of the cache whatever they hold).
  void seek(int64_t n_past);
  std::string device_name() const;     // the GPUs it runs on, by name
  uint64_t device_bytes() const;       // GPU memory held: weights, cache, activations (every GPU)
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
