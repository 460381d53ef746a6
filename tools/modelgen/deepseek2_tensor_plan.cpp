#include "tools/modelgen/deepseek2_tensor_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace tandem::modelgen {

GgmlType storage_type(GgmlType wanted, int64_t row_length) {
  GgmlType t = wanted;
  for (int step = 0; step < 4; ++step) {
    if (row_length % int64_t(ggml_type_info(t).block_size) == 0) return t;
    switch (t) {
      case GgmlType::Q2_K: case GgmlType::Q3_K: t = GgmlType::Q4_0; break;
      case GgmlType::Q4_K: t = GgmlType::Q5_0; break;
      case GgmlType::Q5_K: t = GgmlType::Q5_1; break;
      case GgmlType::Q6_K: case GgmlType::Q8_K: t = GgmlType::Q8_0; break;
      case GgmlType::IQ4_XS: case GgmlType::IQ3_S: case GgmlType::IQ3_XXS: case GgmlType::IQ2_S:
      case GgmlType::IQ2_XS: case GgmlType::IQ2_XXS: case GgmlType::IQ1_M: case GgmlType::IQ1_S:
        t = GgmlType::IQ4_NL;  // llama-quantize's fallback for i-quants on narrow rows
        break;
      case GgmlType::TQ1_0: case GgmlType::TQ2_0: t = GgmlType::Q4_0; break;
      default: t = GgmlType::F16; break;
    }
  }
  return GgmlType::F16;
}

namespace {

// Weights of a projection with `fan_in` inputs: unit-variance outputs for unit-variance inputs.
float fan_in_scale(int64_t fan_in) { return 1.0f / std::sqrt(float(fan_in)); }

class PlanBuilder {
 public:
  explicit PlanBuilder(std::vector<PlannedTensor>& out) : out_(out) {}
  void matrix(std::string name, GgmlType wanted, std::vector<int64_t> shape, int64_t fan_in) {
    const GgmlType t = storage_type(wanted, shape[0]);
    out_.push_back({{std::move(name), t, std::move(shape)}, WeightInit::Normal, fan_in_scale(fan_in)});
  }
  void f32(std::string name, std::vector<int64_t> shape, float scale) {
    out_.push_back({{std::move(name), GgmlType::F32, std::move(shape)}, WeightInit::Normal, scale});
  }
  void norm(std::string name, int64_t n) {
    out_.push_back({{std::move(name), GgmlType::F32, {n}}, WeightInit::NearOne, 0.05f});
  }

 private:
  std::vector<PlannedTensor>& out_;
};

void sort_from(std::vector<PlannedTensor>& v, size_t first) {
  std::sort(v.begin() + long(first), v.end(),
            [](const PlannedTensor& a, const PlannedTensor& b) { return a.info.name < b.info.name; });
}

}  // namespace

std::vector<PlannedTensor> deepseek2_tensor_plan(const Deepseek2Options& o, int64_t vocab) {
  std::vector<PlannedTensor> plan;
  PlanBuilder b(plan);
  const WeightTypes& ty = o.types;
  const int64_t h = o.hidden;
  const int64_t qk_head = o.qk_nope + o.qk_rope;
  const int64_t shared_ffn = o.expert_ffn * o.n_shared;

  // token_embd also serves as the output matrix when tied: scale it like one (logits ~ unit).
  if (!o.tied_output) b.matrix("output.weight", ty.output, {h, vocab}, h);
  b.norm("output_norm.weight", h);
  b.matrix("token_embd.weight", ty.embeddings, {h, vocab}, h);
  sort_from(plan, 0);

  for (int64_t i = 0; i < o.layers; ++i) {
    const size_t first = plan.size();
    const std::string p = "blk." + std::to_string(i) + ".";
    b.norm(p + "attn_norm.weight", h);
    if (o.q_lora_rank > 0) {
      b.matrix(p + "attn_q_a.weight", ty.attention, {h, o.q_lora_rank}, h);
      b.norm(p + "attn_q_a_norm.weight", o.q_lora_rank);
      b.matrix(p + "attn_q_b.weight", ty.attention, {o.q_lora_rank, o.heads * qk_head}, o.q_lora_rank);
    } else {
      b.matrix(p + "attn_q.weight", ty.attention, {h, o.heads * qk_head}, h);
    }
    b.matrix(p + "attn_kv_a_mqa.weight", ty.attention, {h, o.kv_lora_rank + o.qk_rope}, h);
    b.norm(p + "attn_kv_a_norm.weight", o.kv_lora_rank);
    if (o.legacy_kv_b) {
      b.matrix(p + "attn_kv_b.weight", ty.attention, {o.kv_lora_rank, o.heads * (o.qk_nope + o.v_head)},
               o.kv_lora_rank);
    } else {
      // Both halves of kv_b read the normalised latent, so both scale by its width.
      b.matrix(p + "attn_k_b.weight", ty.attention, {o.qk_nope, o.kv_lora_rank, o.heads}, o.kv_lora_rank);
      b.matrix(p + "attn_v_b.weight", ty.attention, {o.kv_lora_rank, o.v_head, o.heads}, o.kv_lora_rank);
    }
    b.matrix(p + "attn_output.weight", ty.attention, {o.heads * o.v_head, h}, o.heads * o.v_head);
    b.norm(p + "ffn_norm.weight", h);
    if (i < o.n_dense) {
      b.matrix(p + "ffn_gate.weight", ty.dense_ffn, {h, o.ffn}, h);
      b.matrix(p + "ffn_up.weight", ty.dense_ffn, {h, o.ffn}, h);
      b.matrix(p + "ffn_down.weight", ty.dense_ffn, {o.ffn, h}, o.ffn);
    } else {
      b.f32(p + "ffn_gate_inp.weight", {h, o.n_experts}, fan_in_scale(h));
      if (o.gating == 2) b.f32(p + "exp_probs_b.bias", {o.n_experts}, 0.01f);
      b.matrix(p + "ffn_gate_exps.weight", ty.expert_gate_up, {h, o.expert_ffn, o.n_experts}, h);
      b.matrix(p + "ffn_up_exps.weight", ty.expert_gate_up, {h, o.expert_ffn, o.n_experts}, h);
      b.matrix(p + "ffn_down_exps.weight", ty.expert_down, {o.expert_ffn, h, o.n_experts}, o.expert_ffn);
      if (o.n_shared > 0) {
        b.matrix(p + "ffn_gate_shexp.weight", ty.dense_ffn, {h, shared_ffn}, h);
        b.matrix(p + "ffn_up_shexp.weight", ty.dense_ffn, {h, shared_ffn}, h);
        b.matrix(p + "ffn_down_shexp.weight", ty.dense_ffn, {shared_ffn, h}, shared_ffn);
      }
    }
    sort_from(plan, first);
  }
  return plan;
}

}  // namespace tandem::modelgen
