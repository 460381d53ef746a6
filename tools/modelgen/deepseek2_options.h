// The shape, routing, tensor types and vocabulary of a random deepseek2 model to generate, and
// presets for the real DeepSeek shapes (V2-Lite, V3) and tiny ones for tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/quant/ggml_type.h"

namespace tandem::modelgen {

// Storage type of each kind of weight matrix. Norms, the router and the routing bias are
// always f32, as llama.cpp writes them. A type whose block does not divide a tensor's rows
// falls back like llama.cpp's quantizer does (q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0,
// q2_K/q3_K -> q4_0, iq* -> iq4_nl, tq* -> q4_0, any 32-block type -> f16).
struct WeightTypes {
  GgmlType embeddings = GgmlType::Q4_K;      // token_embd.weight
  GgmlType output = GgmlType::Q6_K;          // output.weight
  GgmlType attention = GgmlType::Q4_K;       // attn_q*, attn_kv_a_mqa, attn_k_b/v_b/kv_b, attn_output
  GgmlType dense_ffn = GgmlType::Q4_K;       // leading dense layers' ffn_* and shared experts' *_shexp
  GgmlType expert_gate_up = GgmlType::Q4_K;  // ffn_gate_exps, ffn_up_exps
  GgmlType expert_down = GgmlType::Q6_K;     // ffn_down_exps
  void set_all(GgmlType t) { embeddings = output = attention = dense_ffn = expert_gate_up = expert_down = t; }
};

struct Deepseek2Options {
  std::string name = "tandem-random-deepseek2";
  // Shape.
  int64_t hidden = 256;         // embedding_length
  int64_t layers = 4;           // block_count
  int64_t heads = 4;            // attention.head_count
  int64_t q_lora_rank = 0;      // 0: V2-Lite style attn_q; >0: V3 style attn_q_a/attn_q_a_norm/attn_q_b
  int64_t kv_lora_rank = 128;
  int64_t qk_nope = 32;         // per-head query/key dims without rope
  int64_t qk_rope = 16;         // rope.dimension_count
  int64_t v_head = 32;          // per-head value dims
  int64_t ffn = 512;            // feed_forward_length of the leading dense layers
  int64_t expert_ffn = 256;     // expert_feed_forward_length (a shared expert is n_shared times wider)
  int64_t n_experts = 16;
  int64_t n_used = 4;
  int64_t n_shared = 2;
  int64_t n_dense = 1;          // leading_dense_block_count
  int64_t groups = 0;           // expert_group_count; 0 writes no group keys
  int64_t groups_used = 0;      // expert_group_used_count
  int gating = 1;               // expert_gating_func: 1 softmax, 2 sigmoid (adds exp_probs_b.bias)
  std::optional<bool> expert_weights_norm;  // written only when set (V3 writes it)
  double expert_weights_scale = 1.0;
  // Routing skew (tools/modelgen/routing_skew.h): 0 leaves the routers alike; S > 0 scales the
  // router row of a layer's hottest expert by 1 + S, the coldest by 1 (softmax gating), or adds
  // up to 0.05 S to its selection bias (sigmoid gating). 0..100.
  double route_skew = 0;
  int64_t context_length = 4096;
  double rope_freq_base = 10000.0;
  double rms_eps = 1e-6;
  bool yarn = true;             // rope.scaling.* keys
  double yarn_factor = 40.0;
  int64_t yarn_original_context = 4096;
  double yarn_log_multiplier = 0.0707;
  // Layout variants.
  bool legacy_kv_b = false;     // unsplit attn_kv_b, head_count_kv = heads, no *_mla keys
  bool tied_output = false;     // no output.weight (token_embd doubles as the output matrix)
  // Vocabulary: a built-in byte-level BPE of `vocab` tokens, or the tokenizer.* keys of a GGUF.
  int64_t vocab = 2048;
  std::string vocab_from;
  WeightTypes types;
  // Generation.
  uint64_t seed = 1;
  int shards = 1;               // > 1 writes NAME-0000i-of-0000N.gguf
  int threads = 0;              // 0: all hardware threads
  // Block-quantized tensors of big models are assembled from a pool of this many pre-quantized
  // random blocks per (type, scale) instead of quantizing every block afresh: the reference
  // quantizers run at a few M weights/s, far too slow for multi-GB files. -1: automatic (a pool
  // of 16384 blocks once the model has more than 2^28 weights in block types); 0: always fresh.
  int64_t block_pool = -1;
  // Header only: tensor data is left as holes (a sparse file of zeros), for planning and header
  // tests of full-size layouts (a 671B layout takes no disk space and no time).
  bool header_only = false;
  // llama.cpp imatrix GGUF whose per-column importance the IQ4_NL / IQ4_XS quantizers weigh
  // their error by, for the tensors it names (others are quantized unweighted). Tensors it
  // covers are quantized afresh even with a block pool. Empty: none.
  std::string imatrix;
};

// Preset names: tiny-v2, tiny-v3 (the golden test models' shapes), v2-lite, v3.
const std::vector<std::string>& deepseek2_preset_names();
Deepseek2Options deepseek2_preset(std::string_view name);  // throws Error listing the names

// Throws Error naming the first inconsistent option.
void validate(const Deepseek2Options& o);

}  // namespace tandem::modelgen
