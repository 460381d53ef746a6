// The fast CPU forward pass of deepseek2 (`--cpu-only`): MLA attention over an fp32 latent
// cache in the absorbed form, dense FFN, router, shared experts and output head on the
// quantized kernels of runtime/cpu, multi-threaded; routed experts through RoutedExperts (the
// CPU expert engine). Same numerics conventions as Deepseek2Reference, with activations
// quantized to 8 bits for the integer kernels.
//
// The layer parts are public so a scheduler can run some layers here and others elsewhere:
// attention() and ffn() take normalised inputs and write the part's output (the caller adds the
// residual), and the attention cache is an object the caller may own.
//
// As a BatchedLm it keeps one latent cache per slot; a pass runs every matrix, norm, router and
// the routed experts once over the concatenated rows of all chunks, attention per chunk over its
// slot's cache (RoPE at each chunk's own positions), and the head for each chunk's last row.
// The CausalLm side is slot 0.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "experts/cpu_isa.h"
#include "runtime/cpu/mla_attention.h"
#include "runtime/cpu/quant_matmul.h"
#include "runtime/cpu/row_ops.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/model/batched_lm.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

struct Deepseek2CpuOptions {
  int threads = 0;                          // 0: std::thread::hardware_concurrency()
  std::optional<experts::CpuIsa> isa;       // default: experts::selected_cpu_isa()
  int sequences = 1;                        // BatchedLm slots
  // Rows per slot a BatchedLm pass may fill (0: the model's training context, or 1 << 20 when
  // the file does not say); the CausalLm calls are not bounded by it (the cache grows).
  int64_t max_context = 0;

  // The weights are views of the GGUF mmap: matrices repacked for the CPU kernels drop their
  // mapped pages (cpu::QuantMatmul::set_release_mapped).
  bool release_mapped_weights = false;
};

class Deepseek2Cpu : public CausalLm, public BatchedLm {
 public:
  // experts: where routed experts run; null selects ReferenceRoutedExperts.
  Deepseek2Cpu(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts, Deepseek2CpuOptions options = {});

  int64_t n_vocab() const override { return w_.hp.n_vocab; }
  int64_t n_past() const override { return n_past_[0]; }
  void reset() override;  // empties every slot
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;
  // Runs the output head for the last token only.
  void forward_last(std::span<const int32_t> tokens, std::vector<float>& last_logits) override;

  // BatchedLm
  int slots() const override { return int(caches_.size()); }
  int64_t max_context() const override { return max_context_; }
  int64_t n_past(int slot) const override;
  void truncate(int slot, int64_t n) override;
  void copy_prefix(int src, int dst, int64_t n) override;
  void forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) override;

  // A latent cache shaped for this model (the pass keeps one of its own for forward()).
  cpu::LatentKvCacheCpu make_cache() const;
  // Layer parts. x: n_tokens normalised rows of n_embd; out: n_tokens x n_embd, overwritten.
  // attention() appends the tokens at positions cache.length(layer)... to the layer's cache.
  void attention(int64_t layer, const float* x, int64_t n_tokens, cpu::LatentKvCacheCpu& cache, float* out);
  // Rows [row0, row0 + n) of a pass belong to one sequence, appended to its cache.
  struct Segment {
    cpu::LatentKvCacheCpu* cache;
    int64_t row0, n;
  };
  // The same for rows of several sequences: the matrices over all rows, RoPE, cache rows and
  // attention per segment over its own cache (segments cover [0, n_tokens) in order).
  void attention_rows(int64_t layer, const float* x, int64_t n_tokens, std::span<const Segment> segments, float* out);
  void ffn(int64_t layer, const float* x, int64_t n_tokens, float* out);
  // The output head: logits (n_tokens x n_vocab) of normalised rows x.
  void head(const float* x, int64_t n_tokens, float* logits);

  int threads() const { return pool_.size(); }
  experts::CpuIsa isa() const { return isa_; }

 private:
  void run(std::span<const Segment> segments, std::span<const int32_t> tokens, bool all_logits,
           std::vector<float>& logits);
  void swiglu(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down, const float* x,
              int64_t n, float* out);
  void norm_rows(const float* x, const float* weight, int64_t n, int64_t width, float* out);

  const Deepseek2Weights& w_;
  std::shared_ptr<RoutedExperts> experts_;
  experts::CpuIsa isa_;
  cpu::ThreadPool pool_;
  cpu::QuantMatmul mm_;
  cpu::RopeTable rope_;
  int64_t rope_first_pos_ = -1, rope_n_ = 0;  // positions rope_ holds
  std::vector<cpu::LatentKvCacheCpu> caches_;  // per slot
  std::vector<int64_t> n_past_;                 // per slot
  int64_t max_context_ = 0;
  // Legacy attn_kv_b files: per layer the k rows transposed into [n_head * kv_lora x qk_nope]
  // fp32 (attn_k_b's layout), so q_nope absorption is an ordinary product.
  std::vector<std::vector<float>> k_b_owned_;
  std::vector<WeightMatrix> k_b_;
  // Scratch reused across calls (one call at a time).
  std::vector<float> q_, qa_, kv_, qcat_, olat_, heads_, g_, u_, router_, shared_, weights_, last_;
  std::vector<int32_t> batch_tokens_;
  std::vector<int32_t> ids_;
};

}  // namespace tandem
