// The fast CPU forward pass of deepseek2 (`--cpu-only`): MLA attention over an fp32 latent
// cache in the absorbed form, dense FFN, router, shared experts and output head on the
// quantized kernels of runtime/cpu, multi-threaded; routed experts through RoutedExperts (the
// CPU expert engine). Same numerics conventions as Deepseek2Reference, with activations
// quantized to 8 bits for the integer kernels.
//
// The layer parts are public so a scheduler can run some layers here and others elsewhere:
// attention() and ffn() take normalised inputs and write the part's output (the caller adds the
// residual), and the attention cache is an object the caller may own.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "experts/cpu_isa.h"
#include "runtime/cpu/mla_attention.h"
#include "runtime/cpu/quant_matmul.h"
#include "runtime/cpu/row_ops.h"
#include "runtime/cpu/thread_pool.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

struct Deepseek2CpuOptions {
  int threads = 0;                          // 0: std::thread::hardware_concurrency()
  std::optional<experts::CpuIsa> isa;       // default: experts::selected_cpu_isa()
  // The weights are views of the GGUF mmap: matrices repacked for the CPU kernels drop their
  // mapped pages (cpu::QuantMatmul::set_release_mapped).
  bool release_mapped_weights = false;
};

class Deepseek2Cpu : public CausalLm {
 public:
  // experts: where routed experts run; null selects ReferenceRoutedExperts.
  Deepseek2Cpu(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts, Deepseek2CpuOptions options = {});

  int64_t n_vocab() const override { return w_.hp.n_vocab; }
  int64_t n_past() const override { return n_past_; }
  void reset() override;
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;
  // Runs the output head for the last token only.
  void forward_last(std::span<const int32_t> tokens, std::vector<float>& last_logits) override;

  // A latent cache shaped for this model (the pass keeps one of its own for forward()).
  cpu::LatentKvCacheCpu make_cache() const;
  // Layer parts. x: n_tokens normalised rows of n_embd; out: n_tokens x n_embd, overwritten.
  // attention() appends the tokens at positions cache.length(layer)... to the layer's cache.
  void attention(int64_t layer, const float* x, int64_t n_tokens, cpu::LatentKvCacheCpu& cache, float* out);
  void ffn(int64_t layer, const float* x, int64_t n_tokens, float* out);
  // The output head: logits (n_tokens x n_vocab) of normalised rows x.
  void head(const float* x, int64_t n_tokens, float* logits);

  int threads() const { return pool_.size(); }
  experts::CpuIsa isa() const { return isa_; }

 private:
  void run(std::span<const int32_t> tokens, bool all_logits, std::vector<float>& logits);
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
  cpu::LatentKvCacheCpu cache_;
  int64_t n_past_ = 0;
  // Legacy attn_kv_b files: per layer the k rows transposed into [n_head * kv_lora x qk_nope]
  // fp32 (attn_k_b's layout), so q_nope absorption is an ordinary product.
  std::vector<std::vector<float>> k_b_owned_;
  std::vector<WeightMatrix> k_b_;
  // Scratch reused across calls (one call at a time).
  std::vector<float> q_, qa_, kv_, qcat_, olat_, heads_, g_, u_, router_, shared_, weights_;
  std::vector<int32_t> ids_;
};

}  // namespace tandem
