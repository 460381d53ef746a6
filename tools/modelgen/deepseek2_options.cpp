#include "tools/modelgen/deepseek2_options.h"

#include "runtime/core/error.h"

namespace tandem::modelgen {

const std::vector<std::string>& deepseek2_preset_names() {
  static const std::vector<std::string> names = {"tiny-v2", "tiny-v3", "v2-lite", "v3"};
  return names;
}

Deepseek2Options deepseek2_preset(std::string_view name) {
  Deepseek2Options o;
  if (name == "tiny-v2") {
    o.name = "tandem-random-tiny-v2";  // defaults are this shape
  } else if (name == "tiny-v3") {
    o.name = "tandem-random-tiny-v3";
    o.layers = 5;
    o.q_lora_rank = 64;
    o.n_experts = 32;
    o.n_shared = 1;
    o.n_dense = 2;
    o.groups = 4;
    o.groups_used = 2;
    o.gating = 2;
    o.expert_weights_norm = true;
    o.expert_weights_scale = 2.5;
  } else if (name == "v2-lite") {
    o.name = "tandem-random-v2-lite";
    o.hidden = 2048;
    o.layers = 27;
    o.heads = 16;
    o.q_lora_rank = 0;
    o.kv_lora_rank = 512;
    o.qk_nope = 128;
    o.qk_rope = 64;
    o.v_head = 128;
    o.ffn = 10944;
    o.expert_ffn = 1408;
    o.n_experts = 64;
    o.n_used = 6;
    o.n_shared = 2;
    o.n_dense = 1;
    o.vocab = 102400;
    o.context_length = 163840;
  } else if (name == "v3") {
    o.name = "tandem-random-v3";
    o.hidden = 7168;
    o.layers = 61;
    o.heads = 128;
    o.q_lora_rank = 1536;
    o.kv_lora_rank = 512;
    o.qk_nope = 128;
    o.qk_rope = 64;
    o.v_head = 128;
    o.ffn = 18432;
    o.expert_ffn = 2048;
    o.n_experts = 256;
    o.n_used = 8;
    o.n_shared = 1;
    o.n_dense = 3;
    o.groups = 8;
    o.groups_used = 4;
    o.gating = 2;
    o.expert_weights_norm = true;
    o.expert_weights_scale = 2.5;
    o.vocab = 129280;
    o.context_length = 163840;
    o.yarn_log_multiplier = 0.1;
  } else {
    std::string known;
    for (const auto& n : deepseek2_preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown model preset '", name, "' (known: ", known, ")");
  }
  return o;
}

void validate(const Deepseek2Options& o) {
  auto positive = [](const char* what, int64_t v) {
    if (v <= 0) fail("model option ", what, " must be positive, got ", v);
  };
  positive("hidden", o.hidden);
  positive("layers", o.layers);
  positive("heads", o.heads);
  positive("kv_lora_rank", o.kv_lora_rank);
  positive("qk_nope", o.qk_nope);
  positive("qk_rope", o.qk_rope);
  positive("v_head", o.v_head);
  positive("context_length", o.context_length);
  if (!(o.route_skew >= 0 && o.route_skew <= 100)) fail("model option route_skew must be in 0..100, got ", o.route_skew);
  if (o.qk_rope % 2) fail("model option qk_rope must be even (rotary pairs), got ", o.qk_rope);
  if (o.q_lora_rank < 0) fail("model option q_lora_rank must be 0 or positive, got ", o.q_lora_rank);
  if (o.n_dense < 0 || o.n_dense > o.layers)
    fail("model option n_dense must lie in 0..layers (", o.layers, "), got ", o.n_dense);
  if (o.n_dense > 0) positive("ffn", o.ffn);
  if (o.n_dense < o.layers) {
    positive("n_experts", o.n_experts);
    positive("expert_ffn", o.expert_ffn);
    if (o.n_used <= 0 || o.n_used > o.n_experts)
      fail("model option n_used must lie in 1..n_experts (", o.n_experts, "), got ", o.n_used);
    if (o.n_shared < 0) fail("model option n_shared must not be negative, got ", o.n_shared);
    if (o.groups < 0 || (o.groups > 0 && o.n_experts % o.groups != 0))
      fail("model option groups (", o.groups, ") must divide n_experts (", o.n_experts, ")");
    if (o.groups > 0 && (o.groups_used <= 0 || o.groups_used > o.groups))
      fail("model option groups_used must lie in 1..groups (", o.groups, "), got ", o.groups_used);
    if (o.groups > 0 && o.groups_used * (o.n_experts / o.groups) < o.n_used)
      fail("model option groups_used (", o.groups_used, ") leaves fewer experts than n_used (", o.n_used, ")");
  }
  if (o.gating != 1 && o.gating != 2) fail("model option gating must be 1 (softmax) or 2 (sigmoid), got ", o.gating);
  if (o.vocab_from.empty() && o.vocab < 300)
    fail("model option vocab must be at least 300 (256 byte tokens, specials, a few merges), got ", o.vocab);
  if (o.shards < 1) fail("model option shards must be at least 1, got ", o.shards);
  if (o.shards > 99999) fail("model option shards must be at most 99999, got ", o.shards);
  if (o.threads < 0) fail("model option threads must not be negative, got ", o.threads);
}

}  // namespace tandem::modelgen
