// `tandem generate --out FILE [--preset P] [shape options] [--type T] [--imatrix F] [--split N] [--seed S]`:
// writes a random deepseek2 GGUF for tests and benchmarks (tools/modelgen does the work).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/core/error.h"
#include "tools/command_registry.h"
#include "tools/modelgen/deepseek2_generator.h"

namespace tandem::tools {
namespace {

struct GenerateArgs {
  std::string out;
  std::string preset = "tiny-v2";
  // Shape overrides: -1 (or empty) keeps the preset's value.
  int64_t hidden = -1, layers = -1, heads = -1, q_lora_rank = -1, kv_lora_rank = -1, qk_nope = -1,
          qk_rope = -1, v_head = -1, ffn = -1, expert_ffn = -1, n_experts = -1, n_used = -1, n_shared = -1,
          n_dense = -1, groups = -1, groups_used = -1, vocab = -1, context = -1;
  int gating = -1;
  std::string type, attn_type, dense_type, expert_type, expert_down_type, embd_type, output_type;
  std::string vocab_from, name, imatrix;
  bool legacy_kv_b = false, tied_output = false, no_yarn = false, quiet = false, sparse = false;
  uint64_t seed = 1;
  int split = 1;
  int threads = 0;
  int64_t block_pool = -1;
  double route_skew = 0;
};

GgmlType parse_type(const std::string& flag, const std::string& name) {
  const auto t = ggml_type_from_name(name);
  if (!t || !ggml_type_info(*t).can_compute)
    fail(flag, ": '", name, "' is not a type tandem can write (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, "
         "q2_K, q3_K, q4_K, q5_K, q6_K, iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq4_nl, iq4_xs, "
         "tq1_0, tq2_0)");
  return *t;
}

void run_generate(const GenerateArgs& a) {
  modelgen::Deepseek2Options o = modelgen::deepseek2_preset(a.preset);
  auto set = [](int64_t v, int64_t& field) {
    if (v >= 0) field = v;
  };
  set(a.hidden, o.hidden);
  set(a.layers, o.layers);
  set(a.heads, o.heads);
  set(a.q_lora_rank, o.q_lora_rank);
  set(a.kv_lora_rank, o.kv_lora_rank);
  set(a.qk_nope, o.qk_nope);
  set(a.qk_rope, o.qk_rope);
  set(a.v_head, o.v_head);
  set(a.ffn, o.ffn);
  set(a.expert_ffn, o.expert_ffn);
  set(a.n_experts, o.n_experts);
  set(a.n_used, o.n_used);
  set(a.n_shared, o.n_shared);
  set(a.n_dense, o.n_dense);
  set(a.groups, o.groups);
  set(a.groups_used, o.groups_used);
  set(a.vocab, o.vocab);
  set(a.context, o.context_length);
  if (o.n_dense > o.layers) o.n_dense = o.layers;  // --layers below a preset's dense count
  if (a.gating >= 0) {
    o.gating = a.gating;
    if (o.gating == 2 && !o.expert_weights_norm) o.expert_weights_norm = true;
  }
  if (!a.type.empty()) o.types.set_all(parse_type("--type", a.type));
  if (!a.attn_type.empty()) o.types.attention = parse_type("--attn-type", a.attn_type);
  if (!a.dense_type.empty()) o.types.dense_ffn = parse_type("--dense-type", a.dense_type);
  if (!a.expert_type.empty()) o.types.expert_gate_up = parse_type("--expert-type", a.expert_type);
  if (!a.expert_down_type.empty()) o.types.expert_down = parse_type("--expert-down-type", a.expert_down_type);
  if (!a.embd_type.empty()) o.types.embeddings = parse_type("--embd-type", a.embd_type);
  if (!a.output_type.empty()) o.types.output = parse_type("--output-type", a.output_type);
  if (!a.name.empty()) o.name = a.name;
  o.vocab_from = a.vocab_from;
  o.legacy_kv_b = a.legacy_kv_b;
  o.tied_output = a.tied_output;
  if (a.no_yarn) o.yarn = false;
  o.seed = a.seed;
  o.shards = a.split;
  o.threads = a.threads;
  o.block_pool = a.block_pool;
  o.header_only = a.sparse;
  o.imatrix = a.imatrix;
  o.route_skew = a.route_skew;

  const auto t0 = std::chrono::steady_clock::now();
  int last_percent = -1;
  auto progress = [&](uint64_t done, uint64_t total) {
    const int percent = total ? int(done * 100 / total) : 100;
    if (a.quiet || percent / 5 == last_percent / 5) return;
    last_percent = percent;
    std::fprintf(stderr, "\rgenerating: %3d%%", percent);
    std::fflush(stderr);
  };
  const auto model = modelgen::generate_deepseek2(o, a.out, progress);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!a.quiet) std::fprintf(stderr, "\r");
  std::printf("wrote %zu tensors, %.1f MiB in %.1f s (%.0f MiB/s), %zu file(s):\n", model.tensor_count,
              double(model.file_bytes) / 1048576.0, secs, double(model.file_bytes) / 1048576.0 / std::max(secs, 1e-9),
              model.paths.size());
  for (const auto& p : model.paths) std::printf("  %s\n", p.c_str());
}

void setup_generate(CLI::App& root) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = root.add_subcommand("generate", "Write a random deepseek2 GGUF (tests and benchmarks)");
  cmd->add_option("--out,-o", a->out, "Output file (first shard's name is derived when --split > 1)")->required();
  std::string presets;
  for (const auto& n : modelgen::deepseek2_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--preset", a->preset, "Starting shape: " + presets)->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "embedding_length");
  cmd->add_option("--layers", a->layers, "block_count (cut depth for benchmarks)");
  cmd->add_option("--heads", a->heads, "attention heads");
  cmd->add_option("--q-lora-rank", a->q_lora_rank, "0: attn_q (V2-Lite); >0: attn_q_a/attn_q_b (V3)");
  cmd->add_option("--kv-lora-rank", a->kv_lora_rank, "latent KV width");
  cmd->add_option("--qk-nope", a->qk_nope, "per-head q/k dims without rope");
  cmd->add_option("--qk-rope", a->qk_rope, "per-head rope dims");
  cmd->add_option("--v-head", a->v_head, "per-head value dims");
  cmd->add_option("--ffn", a->ffn, "dense layers' feed-forward width");
  cmd->add_option("--expert-ffn", a->expert_ffn, "experts' feed-forward width");
  cmd->add_option("--experts", a->n_experts, "routed experts per layer");
  cmd->add_option("--experts-used", a->n_used, "experts used per token");
  cmd->add_option("--shared-experts", a->n_shared, "shared experts (0 for none)");
  cmd->add_option("--dense-layers", a->n_dense, "leading dense layers");
  cmd->add_option("--groups", a->groups, "expert groups (0: none)");
  cmd->add_option("--groups-used", a->groups_used, "expert groups used per token");
  cmd->add_option("--gating", a->gating, "1 softmax, 2 sigmoid (+ exp_probs_b.bias)");
  cmd->add_option("--vocab", a->vocab, "tokens of the built-in byte-level BPE vocabulary");
  cmd->add_option("--vocab-from", a->vocab_from, "copy tokenizer.* keys from this GGUF instead");
  cmd->add_option("--context", a->context, "context_length");
  cmd->add_option("--type", a->type, "type of every weight matrix (e.g. f16, q8_0, q4_K, iq4_xs)");
  cmd->add_option("--attn-type", a->attn_type, "attention matrices");
  cmd->add_option("--dense-type", a->dense_type, "dense FFN and shared experts");
  cmd->add_option("--expert-type", a->expert_type, "expert gate/up");
  cmd->add_option("--expert-down-type", a->expert_down_type, "expert down");
  cmd->add_option("--embd-type", a->embd_type, "token_embd");
  cmd->add_option("--output-type", a->output_type, "output.weight");
  cmd->add_flag("--legacy-kv-b", a->legacy_kv_b, "unsplit attn_kv_b (older llama.cpp files)");
  cmd->add_flag("--tied-output", a->tied_output, "no output.weight");
  cmd->add_flag("--no-yarn", a->no_yarn, "omit rope.scaling.* keys");
  cmd->add_option("--name", a->name, "general.name");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_option("--split", a->split, "number of shards")->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0: all)")->capture_default_str();
  cmd->add_option("--block-pool", a->block_pool,
                  "draw quantized blocks from a pool of N pre-quantized random blocks (fast); 0: quantize "
                  "every block; -1: pool of 16384 once the model exceeds 2^28 quantized weights")
      ->capture_default_str();
  cmd->add_option("--imatrix", a->imatrix,
                  "llama.cpp imatrix GGUF: the i-quant (iq*) and ternary (tq*) quantizers weigh each column by its "
                  "importance");
  cmd->add_option("--route-skew", a->route_skew,
                  "bias the routers so some experts are chosen much more often (per layer, a hottest expert: router row x (1+S) for softmax, selection bias +0.05 S for sigmoid gating; "
                  "which experts differ per layer; 0: no skew, 8: strong)")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", a->quiet, "no progress output");
  cmd->add_flag("--sparse", a->sparse, "header only: tensor data left as holes (for `tandem plan` on full-size layouts)");
  cmd->callback([a] { run_generate(*a); });
}

TANDEM_COMMAND(setup_generate);

}  // namespace
}  // namespace tandem::tools
