#include "runtime/model/deepseek2/deepseek2_weights.h"

#include <string>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem {

Deepseek2Weights Deepseek2Weights::from_gguf(const GgufFile& f) {
  Deepseek2Weights w;
  w.hp = Deepseek2Hparams::from_gguf(f);
  const Deepseek2Hparams& h = w.hp;
  w.token_embd = weight_matrix(f, "token_embd.weight", h.n_embd, h.n_vocab);
  w.output_norm = weight_vector(f, "output_norm.weight", h.n_embd);
  w.output = h.tied_output ? w.token_embd : weight_matrix(f, "output.weight", h.n_embd, h.n_vocab);

  const int64_t q_out = h.n_head * h.q_head_dim();
  for (int64_t il = 0; il < h.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    Deepseek2Layer L;
    L.attn_norm = weight_vector(f, p + "attn_norm.weight", h.n_embd);
    if (h.q_lora_rank == 0) {
      L.wq = weight_matrix(f, p + "attn_q.weight", h.n_embd, q_out);
    } else {
      L.wq_a = weight_matrix(f, p + "attn_q_a.weight", h.n_embd, h.q_lora_rank);
      L.q_a_norm = weight_vector(f, p + "attn_q_a_norm.weight", h.q_lora_rank);
      L.wq_b = weight_matrix(f, p + "attn_q_b.weight", h.q_lora_rank, q_out);
    }
    L.wkv_a_mqa = weight_matrix(f, p + "attn_kv_a_mqa.weight", h.n_embd, h.kv_lora_rank + h.qk_rope);
    L.kv_a_norm = weight_vector(f, p + "attn_kv_a_norm.weight", h.kv_lora_rank);
    if (h.split_kv_b) {
      L.wk_b = weight_matrix(f, p + "attn_k_b.weight", h.qk_nope, h.kv_lora_rank, h.n_head);
      L.wv_b = weight_matrix(f, p + "attn_v_b.weight", h.kv_lora_rank, h.v_head, h.n_head);
    } else {
      L.wkv_b = weight_matrix(f, p + "attn_kv_b.weight", h.kv_lora_rank, h.n_head * (h.qk_nope + h.v_head));
    }
    L.wo = weight_matrix(f, p + "attn_output.weight", h.n_head * h.v_head, h.n_embd);
    L.ffn_norm = weight_vector(f, p + "ffn_norm.weight", h.n_embd);
    if (il < h.n_layer_dense_lead) {
      L.ffn_gate = weight_matrix(f, p + "ffn_gate.weight", h.n_embd, h.n_ff);
      L.ffn_up = weight_matrix(f, p + "ffn_up.weight", h.n_embd, h.n_ff);
      L.ffn_down = weight_matrix(f, p + "ffn_down.weight", h.n_ff, h.n_embd);
    } else {
      L.gate_inp = weight_matrix(f, p + "ffn_gate_inp.weight", h.n_embd, h.n_expert);
      L.exp_probs_b = optional_weight_vector(f, p + "exp_probs_b.bias", h.n_expert);
      L.gate_exps = weight_matrix(f, p + "ffn_gate_exps.weight", h.n_embd, h.n_ff_expert, h.n_expert);
      L.up_exps = weight_matrix(f, p + "ffn_up_exps.weight", h.n_embd, h.n_ff_expert, h.n_expert);
      L.down_exps = weight_matrix(f, p + "ffn_down_exps.weight", h.n_ff_expert, h.n_embd, h.n_expert);
      if (h.n_expert_shared > 0) {
        const int64_t sh = h.n_ff_expert * h.n_expert_shared;
        L.gate_shexp = weight_matrix(f, p + "ffn_gate_shexp.weight", h.n_embd, sh);
        L.up_shexp = weight_matrix(f, p + "ffn_up_shexp.weight", h.n_embd, sh);
        L.down_shexp = weight_matrix(f, p + "ffn_down_shexp.weight", sh, h.n_embd);
      }
    }
    w.layers.push_back(std::move(L));
  }
  return w;
}

}  // namespace tandem
