// The named weights of a deepseek2 model, as views into the mmapped GGUF, shape-checked at load.
#pragma once

#include <memory>
#include <vector>

#include "runtime/model/deepseek2/deepseek2_hparams.h"
#include "runtime/model/weight_matrix.h"

namespace tandem {

struct Deepseek2Layer {
  const float* attn_norm = nullptr;
  WeightMatrix wq;          // [n_head*q_head_dim x n_embd] when q_lora_rank == 0
  WeightMatrix wq_a;        // [q_lora x n_embd]
  const float* q_a_norm = nullptr;
  WeightMatrix wq_b;        // [n_head*q_head_dim x q_lora]
  WeightMatrix wkv_a_mqa;   // [kv_lora + rope x n_embd]
  const float* kv_a_norm = nullptr;
  WeightMatrix wk_b;        // n_head x [kv_lora x qk_nope]  (absorbs q_nope into latent space)
  WeightMatrix wv_b;        // n_head x [v_head x kv_lora]
  WeightMatrix wkv_b;       // legacy: [n_head*(qk_nope+v_head) x kv_lora]
  WeightMatrix wo;          // [n_embd x n_head*v_head]
  const float* ffn_norm = nullptr;
  // Dense FFN (leading layers).
  WeightMatrix ffn_gate, ffn_up, ffn_down;
  // MoE.
  WeightMatrix gate_inp;        // router [n_expert x n_embd]
  const float* exp_probs_b = nullptr;
  WeightMatrix gate_exps, up_exps, down_exps;  // n_expert stacked matrices
  WeightMatrix gate_shexp, up_shexp, down_shexp;
  bool is_moe() const { return !gate_inp.empty(); }
};

struct Deepseek2Weights {
  Deepseek2Hparams hp;
  WeightMatrix token_embd;  // [n_vocab x n_embd]
  const float* output_norm = nullptr;
  WeightMatrix output;      // [n_vocab x n_embd]; the token table when tied
  std::vector<Deepseek2Layer> layers;

  static Deepseek2Weights from_gguf(const GgufFile& f);  // throws Error naming the tensor
};

}  // namespace tandem
