// The plain CPU forward pass of deepseek2: fp32 math, weights dequantized on the fly, an fp32
// latent KV cache. It is the oracle that faster paths are checked against, so it favours being
// obviously correct over being fast (batch products still go through BLAS so tests stay quick).
// As a BatchedLm it keeps one cache per slot and runs the chunks of a pass one after another,
// each on its own slot's cache; the CausalLm side is slot 0.
#pragma once

#include <memory>
#include <vector>

#include "runtime/model/batched_lm.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/deepseek2/deepseek2_weights.h"
#include "runtime/model/rope.h"
#include "runtime/model/routed_experts.h"

namespace tandem {

class Deepseek2Reference : public CausalLm, public BatchedLm {
 public:
  // experts: where routed experts run; null selects ReferenceRoutedExperts. slots: sequence
  // caches kept (BatchedLm); max_context: rows per slot a BatchedLm pass may fill (0: the
  // model's training context, or 1 << 20 when the file does not say). The CausalLm calls use
  // slot 0 and are not bounded by max_context (the cache grows).
  Deepseek2Reference(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts = nullptr, int slots = 1,
                     int64_t max_context = 0);

  int64_t n_vocab() const override { return w_.hp.n_vocab; }
  int64_t n_past() const override { return slots_[0].n_past; }
  void reset() override;  // empties every slot
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits) override;

  // BatchedLm
  int slots() const override { return int(slots_.size()); }
  int64_t max_context() const override { return max_context_; }
  int64_t n_past(int slot) const override;
  void truncate(int slot, int64_t n) override;
  void copy_prefix(int src, int dst, int64_t n) override;
  void forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) override;

  // All routed-expert layers' weights, for building other RoutedExperts implementations.
  static std::vector<ExpertLayerWeights> expert_layers(const Deepseek2Weights& w);

 private:
  void attention(int64_t il, const float* x, int64_t n, float* out);
  void feed_forward(int64_t il, const float* x, int64_t n, float* out);

  const Deepseek2Weights& w_;
  std::shared_ptr<RoutedExperts> experts_;
  // Latent cache per layer: normalised c_kv (kv_lora) and rotated k_pe (rope) per position.
  struct SlotCache {
    int64_t n_past = 0;
    std::vector<std::vector<float>> ckv, kpe;
  };
  void run(SlotCache& slot, std::span<const int32_t> tokens, std::vector<float>& logits);

  Rope rope_;
  std::vector<SlotCache> slots_;
  SlotCache* cur_ = nullptr;  // the slot run() is feeding
  int64_t max_context_ = 0;
};

}  // namespace tandem
