#include "tools/modelgen/deepseek2_metadata.h"

#include "runtime/core/error.h"
#include "runtime/gguf/gguf_file.h"
#include "tools/modelgen/byte_level_bpe_vocab.h"

namespace tandem::modelgen {

uint32_t llama_file_type(GgmlType bulk) {
  switch (bulk) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q4_1: return 3;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::Q2_K: return 10;
    case GgmlType::Q3_K: return 12;  // Q3_K_M
    case GgmlType::Q4_K: return 15;  // Q4_K_M
    case GgmlType::Q5_K: return 17;  // Q5_K_M
    case GgmlType::Q6_K: return 18;
    case GgmlType::IQ2_XXS: return 19;
    case GgmlType::IQ2_XS: return 20;
    case GgmlType::IQ3_XXS: return 23;
    case GgmlType::IQ1_S: return 24;
    case GgmlType::IQ4_NL: return 25;
    case GgmlType::IQ3_S: return 26;
    case GgmlType::IQ2_S: return 28;
    case GgmlType::IQ4_XS: return 30;
    case GgmlType::IQ1_M: return 31;
    case GgmlType::TQ1_0: return 36;
    case GgmlType::TQ2_0: return 37;
    case GgmlType::BF16: return 32;
    default: return 1024;  // llama.cpp's "guessed"
  }
}

namespace {

void add_vocab(const Deepseek2Options& o, Deepseek2Metadata& m) {
  if (!o.vocab_from.empty()) {
    auto src = GgufFile::open(o.vocab_from);
    for (const auto& [k, v] : src->metadata())
      if (k.rfind("tokenizer.", 0) == 0) m.kv.emplace_back(k, v);
    const GgufValue* tokens = src->find("tokenizer.ggml.tokens");
    if (!tokens || !tokens->as_array())
      fail(o.vocab_from, ": has no tokenizer.ggml.tokens array to copy the vocabulary from");
    m.vocab = int64_t(tokens->as_array()->size());
    return;
  }
  const ByteLevelBpeVocab v = build_byte_level_bpe_vocab(o.vocab);
  m.vocab = int64_t(v.tokens.size());
  m.kv.emplace_back("tokenizer.ggml.model", GgufValue::string("gpt2"));
  m.kv.emplace_back("tokenizer.ggml.pre", GgufValue::string("deepseek-llm"));
  m.kv.emplace_back("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
  m.kv.emplace_back("tokenizer.ggml.token_type", GgufValue::i32_array(v.token_types));
  m.kv.emplace_back("tokenizer.ggml.merges", GgufValue::string_array(v.merges));
  m.kv.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::u32(v.bos));
  m.kv.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::u32(v.eos));
  m.kv.emplace_back("tokenizer.ggml.padding_token_id", GgufValue::u32(v.eos));
  m.kv.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  m.kv.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  m.kv.emplace_back("tokenizer.chat_template", GgufValue::string(deepseek_chat_template()));
}

}  // namespace

Deepseek2Metadata deepseek2_metadata(const Deepseek2Options& o) {
  Deepseek2Metadata m;
  auto u32 = [&](const std::string& key, int64_t v) { m.kv.emplace_back(key, GgufValue::u32(uint32_t(v))); };
  auto f32 = [&](const std::string& key, double v) { m.kv.emplace_back(key, GgufValue::f32(float(v))); };
  const std::string a = "deepseek2.";

  m.kv.emplace_back("general.architecture", GgufValue::string("deepseek2"));
  add_vocab(o, m);
  m.kv.emplace_back("general.name", GgufValue::string(o.name));
  u32(a + "context_length", o.context_length);
  u32(a + "embedding_length", o.hidden);
  u32(a + "block_count", o.layers);
  u32(a + "feed_forward_length", o.ffn);
  u32(a + "attention.head_count", o.heads);
  // MLA files cache one latent "head"; the legacy layout expands K and V per head.
  u32(a + "attention.head_count_kv", o.legacy_kv_b ? o.heads : 1);
  f32(a + "rope.freq_base", o.rope_freq_base);
  f32(a + "attention.layer_norm_rms_epsilon", o.rms_eps);
  u32(a + "expert_used_count", o.n_used);
  u32(a + "leading_dense_block_count", o.n_dense);
  u32(a + "vocab_size", m.vocab);
  u32(a + "attention.q_lora_rank", o.q_lora_rank);
  u32(a + "attention.kv_lora_rank", o.kv_lora_rank);
  if (o.legacy_kv_b) {
    u32(a + "attention.key_length", o.qk_nope + o.qk_rope);
    u32(a + "attention.value_length", o.v_head);
  } else {
    u32(a + "attention.key_length", o.kv_lora_rank + o.qk_rope);
    u32(a + "attention.value_length", o.kv_lora_rank);
    u32(a + "attention.key_length_mla", o.qk_nope + o.qk_rope);
    u32(a + "attention.value_length_mla", o.v_head);
  }
  u32(a + "expert_feed_forward_length", o.expert_ffn);
  u32(a + "expert_count", o.n_experts);
  u32(a + "expert_shared_count", o.n_shared);
  f32(a + "expert_weights_scale", o.expert_weights_scale);
  if (o.expert_weights_norm) m.kv.emplace_back(a + "expert_weights_norm", GgufValue::boolean(*o.expert_weights_norm));
  u32(a + "expert_gating_func", o.gating);
  if (o.groups > 0) {
    u32(a + "expert_group_count", o.groups);
    u32(a + "expert_group_used_count", o.groups_used);
  }
  u32(a + "rope.dimension_count", o.qk_rope);
  if (o.yarn) {
    m.kv.emplace_back(a + "rope.scaling.type", GgufValue::string("yarn"));
    f32(a + "rope.scaling.factor", o.yarn_factor);
    u32(a + "rope.scaling.original_context_length", o.yarn_original_context);
    f32(a + "rope.scaling.yarn_log_multiplier", o.yarn_log_multiplier);
  }
  u32("general.quantization_version", 2);
  u32("general.file_type", llama_file_type(o.n_dense < o.layers ? o.types.expert_gate_up : o.types.attention));
  return m;
}

}  // namespace tandem::modelgen
