// Hyper-parameters of a deepseek2-architecture GGUF (DeepSeek-V2, V2-Lite, V3, R1 and kin).
#pragma once

#include <cstdint>
#include <string>

namespace tandem {

class GgufFile;

enum class ExpertGating { Softmax = 1, Sigmoid = 2 };

struct Deepseek2Hparams {
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ctx_train = 0;
  int64_t n_head = 0;
  int64_t n_ff = 0;             // dense FFN width
  int64_t n_layer_dense_lead = 0;
  float rms_eps = 1e-6f;

  // Multi-head latent attention.
  int64_t q_lora_rank = 0;      // 0: a single attn_q projection (V2-Lite)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope = 0;          // per-head query/key part without rope
  int64_t qk_rope = 0;          // per-head rope part (rope.dimension_count)
  int64_t v_head = 0;           // per-head value size
  bool split_kv_b = true;       // attn_k_b/attn_v_b present; false: legacy unsplit attn_kv_b

  // Mixture of experts.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  int64_t n_expert_shared = 0;
  int64_t n_ff_expert = 0;
  int64_t n_expert_groups = 1;
  int64_t n_expert_groups_used = 1;
  ExpertGating gating = ExpertGating::Softmax;
  bool expert_weights_norm = false;
  float expert_weights_scale = 1.0f;

  // RoPE with optional YaRN scaling.
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / scaling factor
  bool rope_yarn = false;
  int64_t rope_yarn_orig_ctx = 0;
  float rope_yarn_log_mul = 0.0f;
  float rope_yarn_beta_fast = 32.0f;
  float rope_yarn_beta_slow = 1.0f;

  bool tied_output = false;     // no output.weight: the token table is the output head

  int64_t q_head_dim() const { return qk_nope + qk_rope; }
  // Softmax scale of attention scores, including YaRN's magnitude correction (mscale^2).
  float attention_scale() const;
  // Magnitude factor applied to cos/sin in RoPE: 1 unless YaRN is on.
  float rope_magnitude() const { return 1.0f; }

  static Deepseek2Hparams from_gguf(const GgufFile& f);  // throws Error naming bad keys
  std::string describe() const;
};

}  // namespace tandem
