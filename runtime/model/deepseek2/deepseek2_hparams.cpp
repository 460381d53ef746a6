#include "runtime/model/deepseek2/deepseek2_hparams.h"

#include <cmath>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"

namespace tandem {

float Deepseek2Hparams::attention_scale() const {
  float mscale = 1.0f;
  // YaRN (DeepSeek's variant): the attention logits are scaled by mscale^2 where
  // mscale = 1 + log_mul * ln(factor); yarn_log_multiplier in GGUF is 0.1 * mscale_all_dim.
  if (rope_yarn && rope_freq_scale != 1.0f)
    mscale = 1.0f + rope_yarn_log_mul * std::log(1.0f / rope_freq_scale);
  return mscale * mscale / std::sqrt(float(q_head_dim()));
}

Deepseek2Hparams Deepseek2Hparams::from_gguf(const GgufFile& f) {
  const std::string arch = f.architecture();
  if (arch != "deepseek2") fail(f.path(), ": architecture is '", arch, "', expected deepseek2");
  auto key = [&](const char* k) { return arch + "." + k; };
  auto positive = [&](const char* k) {
    const uint64_t v = f.get_uint(key(k));
    if (v == 0 || v > (uint64_t(1) << 31)) fail(f.path(), ": ", key(k), " = ", v, " is out of range");
    return int64_t(v);
  };
  auto optional = [&](const char* k, int64_t dflt) {
    const auto v = f.get_uint_opt(key(k));
    if (v && *v > (uint64_t(1) << 31)) fail(f.path(), ": ", key(k), " = ", *v, " is out of range");
    return v ? int64_t(*v) : dflt;
  };

  Deepseek2Hparams h;
  h.n_embd = positive("embedding_length");
  h.n_layer = positive("block_count");
  h.n_ctx_train = optional("context_length", 4096);
  h.n_head = positive("attention.head_count");
  h.n_ff = optional("feed_forward_length", 0);
  h.n_layer_dense_lead = optional("leading_dense_block_count", 0);
  h.rms_eps = float(f.get_float_opt(key("attention.layer_norm_rms_epsilon")).value_or(1e-6));
  if (!(h.rms_eps > 0.0f) || h.rms_eps > 1.0f) fail(f.path(), ": rms epsilon ", h.rms_eps, " is out of range");

  h.q_lora_rank = optional("attention.q_lora_rank", 0);
  h.kv_lora_rank = positive("attention.kv_lora_rank");
  h.qk_rope = positive("rope.dimension_count");
  if (h.qk_rope % 2) fail(f.path(), ": rope.dimension_count ", h.qk_rope, " must be even");
  const auto k_mla = f.get_uint_opt(key("attention.key_length_mla"));
  const auto v_mla = f.get_uint_opt(key("attention.value_length_mla"));
  const int64_t key_length = positive("attention.key_length");
  const int64_t value_length = positive("attention.value_length");
  if (k_mla && v_mla) {  // newer files: key_length describes the absorbed (MQA) form
    h.qk_nope = int64_t(*k_mla) - h.qk_rope;
    h.v_head = int64_t(*v_mla);
  } else {
    h.qk_nope = key_length - h.qk_rope;
    h.v_head = value_length;
  }
  if (h.qk_nope <= 0 || h.v_head <= 0)
    fail(f.path(), ": attention head sizes are inconsistent (key length ", k_mla ? *k_mla : key_length,
         ", rope ", h.qk_rope, ", value length ", h.v_head, ")");
  h.split_kv_b = f.find_tensor("blk.0.attn_k_b.weight") != nullptr;

  h.n_expert = optional("expert_count", 0);
  h.n_expert_used = optional("expert_used_count", 0);
  h.n_expert_shared = optional("expert_shared_count", 0);
  h.n_ff_expert = optional("expert_feed_forward_length", 0);
  h.n_expert_groups = std::max<int64_t>(1, optional("expert_group_count", 1));
  h.n_expert_groups_used = std::max<int64_t>(1, optional("expert_group_used_count", h.n_expert_groups));
  if (h.n_layer_dense_lead > h.n_layer)
    fail(f.path(), ": leading_dense_block_count ", h.n_layer_dense_lead, " exceeds block_count ", h.n_layer);
  if (h.n_layer_dense_lead < h.n_layer) {
    if (h.n_expert <= 0 || h.n_expert_used <= 0 || h.n_expert_used > h.n_expert || h.n_ff_expert <= 0)
      fail(f.path(), ": MoE layers need 0 < expert_used_count (", h.n_expert_used, ") <= expert_count (",
           h.n_expert, ") and expert_feed_forward_length > 0");
    if (h.n_expert % h.n_expert_groups != 0 || h.n_expert_groups_used > h.n_expert_groups)
      fail(f.path(), ": ", h.n_expert, " experts cannot form ", h.n_expert_groups, " groups with ",
           h.n_expert_groups_used, " used");
    if (h.n_expert_groups > 1 && h.n_expert / h.n_expert_groups < 2)
      fail(f.path(), ": expert groups need at least 2 experts each");
    if (h.n_expert_groups_used * (h.n_expert / h.n_expert_groups) < h.n_expert_used)
      fail(f.path(), ": the ", h.n_expert_groups_used, " used groups hold fewer than ", h.n_expert_used, " experts");
  }
  if (h.n_layer_dense_lead > 0 && h.n_ff <= 0) fail(f.path(), ": dense layers need feed_forward_length");
  const uint64_t gating = f.get_uint_opt(key("expert_gating_func")).value_or(1);
  if (gating != 1 && gating != 2)
    fail(f.path(), ": expert_gating_func ", gating, " is not supported (1 softmax, 2 sigmoid)");
  h.gating = ExpertGating(gating);
  h.expert_weights_norm = f.get_bool_opt(key("expert_weights_norm")).value_or(false);
  h.expert_weights_scale = float(f.get_float_opt(key("expert_weights_scale")).value_or(1.0));
  if (h.expert_weights_scale == 0.0f) h.expert_weights_scale = 1.0f;

  h.rope_freq_base = float(f.get_float_opt(key("rope.freq_base")).value_or(10000.0));
  const auto scaling = f.get_string_opt(key("rope.scaling.type"));
  double factor = f.get_float_opt(key("rope.scaling.factor")).value_or(0.0);
  if (auto linear = f.get_float_opt(key("rope.scale_linear"))) factor = *linear;
  if (factor > 0.0) h.rope_freq_scale = float(1.0 / factor);
  if (scaling && *scaling != "none" && *scaling != "yarn" && *scaling != "linear")
    fail(f.path(), ": rope scaling type '", *scaling, "' is not supported");
  h.rope_yarn = scaling && *scaling == "yarn";
  h.rope_yarn_orig_ctx = optional("rope.scaling.original_context_length", h.n_ctx_train);
  h.rope_yarn_log_mul = float(f.get_float_opt(key("rope.scaling.yarn_log_multiplier")).value_or(0.0));
  if (auto b = f.get_float_opt(key("rope.scaling.yarn_beta_fast"))) h.rope_yarn_beta_fast = float(*b);
  if (auto b = f.get_float_opt(key("rope.scaling.yarn_beta_slow"))) h.rope_yarn_beta_slow = float(*b);

  const GgufTensor& embd = f.tensor("token_embd.weight");
  if (embd.shape.size() != 2 || embd.shape[0] != h.n_embd)
    fail(f.path(), ": token_embd.weight must be [", h.n_embd, " x vocab]");
  h.n_vocab = embd.shape[1];
  h.tied_output = f.find_tensor("output.weight") == nullptr;
  return h;
}

std::string Deepseek2Hparams::describe() const {
  std::ostringstream s;
  s << "deepseek2: " << n_layer << " layers (" << n_layer_dense_lead << " dense), hidden " << n_embd
    << ", " << n_head << " heads, q rank " << q_lora_rank << ", kv rank " << kv_lora_rank
    << ", head dims nope " << qk_nope << " rope " << qk_rope << " v " << v_head << ", " << n_expert
    << " experts (" << n_expert_used << " used, " << n_expert_shared << " shared, ffn " << n_ff_expert
    << "), vocab " << n_vocab;
  return s.str();
}

}  // namespace tandem
