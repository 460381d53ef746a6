#include "runtime/model/deepseek2/deepseek2_reference.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/model/moe_router.h"
#include "runtime/model/reference_ops.h"
#include "runtime/model/sequence_chunks.h"

namespace tandem {
namespace {

RopeParams rope_params(const Deepseek2Hparams& h) {
  RopeParams p;
  p.n_dims = h.qk_rope;
  p.freq_base = h.rope_freq_base;
  p.freq_scale = h.rope_freq_scale;
  p.yarn = h.rope_yarn;
  p.yarn_orig_ctx = h.rope_yarn_orig_ctx;
  p.yarn_beta_fast = h.rope_yarn_beta_fast;
  p.yarn_beta_slow = h.rope_yarn_beta_slow;
  return p;
}

// Rows [first, first + count) of a matrix as a matrix of their own.
WeightMatrix row_range(const WeightMatrix& m, int64_t first, int64_t count) {
  WeightMatrix r = m;
  r.rows = count;
  r.data = m.row(first);
  return r;
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

std::vector<ExpertLayerWeights> Deepseek2Reference::expert_layers(const Deepseek2Weights& w) {
  std::vector<ExpertLayerWeights> layers(w.layers.size());
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const Deepseek2Layer& L = w.layers[i];
    if (!L.is_moe()) continue;
    layers[i] = {L.gate_exps, L.up_exps, L.down_exps, w.hp.n_expert};
  }
  return layers;
}

Deepseek2Reference::Deepseek2Reference(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts, int slots,
                                       int64_t max_context)
    : w_(w), experts_(std::move(experts)), rope_(rope_params(w.hp)) {
  if (slots < 1) fail("the reference pass needs at least one sequence slot, not ", slots);
  if (max_context < 0) fail("max_context ", max_context, " is negative");
  if (!experts_) experts_ = std::make_shared<ReferenceRoutedExperts>(expert_layers(w));
  max_context_ = max_context > 0 ? max_context : (w.hp.n_ctx_train > 0 ? w.hp.n_ctx_train : int64_t(1) << 20);
  slots_.resize(size_t(slots));
  reset();
}

void Deepseek2Reference::reset() {
  for (SlotCache& s : slots_) {
    s.n_past = 0;
    s.ckv.assign(size_t(w_.hp.n_layer), {});
    s.kpe.assign(size_t(w_.hp.n_layer), {});
  }
}

int64_t Deepseek2Reference::n_past(int slot) const {
  check_slot(*this, slot, "n_past");
  return slots_[size_t(slot)].n_past;
}

void Deepseek2Reference::truncate(int slot, int64_t n) {
  check_truncate(*this, slot, n);
  SlotCache& s = slots_[size_t(slot)];
  s.n_past = n;
  for (auto& l : s.ckv) l.resize(size_t(n * w_.hp.kv_lora_rank));
  for (auto& l : s.kpe) l.resize(size_t(n * w_.hp.qk_rope));
}

void Deepseek2Reference::copy_prefix(int src, int dst, int64_t n) {
  check_copy_prefix(*this, src, dst, n);
  const SlotCache& s = slots_[size_t(src)];
  SlotCache& d = slots_[size_t(dst)];
  d.n_past = n;
  for (size_t il = 0; il < s.ckv.size(); ++il) {
    d.ckv[il].assign(s.ckv[il].begin(), s.ckv[il].begin() + std::ptrdiff_t(n * w_.hp.kv_lora_rank));
    d.kpe[il].assign(s.kpe[il].begin(), s.kpe[il].begin() + std::ptrdiff_t(n * w_.hp.qk_rope));
  }
}

void Deepseek2Reference::forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) {
  check_chunks(*this, chunks);
  const int64_t nv = w_.hp.n_vocab;
  last_logits.resize(chunks.size() * size_t(nv));
  std::vector<float> logits;
  for (size_t i = 0; i < chunks.size(); ++i) {
    run(slots_[size_t(chunks[i].slot)], chunks[i].tokens, logits);
    std::copy(logits.end() - std::ptrdiff_t(nv), logits.end(), last_logits.begin() + std::ptrdiff_t(i * size_t(nv)));
  }
}

void Deepseek2Reference::forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
  run(slots_[0], tokens, logits);
}

void Deepseek2Reference::run(SlotCache& slot, std::span<const int32_t> tokens, std::vector<float>& logits) {
  cur_ = &slot;
  const Deepseek2Hparams& h = w_.hp;
  const int64_t n = int64_t(tokens.size());
  const int64_t d = h.n_embd;
  if (n == 0) {
    logits.clear();
    return;
  }
  for (int32_t id : tokens)
    if (id < 0 || id >= h.n_vocab) fail("token id ", id, " is outside the vocabulary of ", h.n_vocab);

  std::vector<float> x(size_t(n * d)), xn(size_t(n * d)), y(size_t(n * d));
  for (int64_t t = 0; t < n; ++t) reference_row(w_.token_embd, tokens[size_t(t)], x.data() + t * d);

  for (int64_t il = 0; il < h.n_layer; ++il) {
    const Deepseek2Layer& L = w_.layers[size_t(il)];
    for (int64_t t = 0; t < n; ++t) rms_norm(x.data() + t * d, L.attn_norm, d, h.rms_eps, xn.data() + t * d);
    attention(il, xn.data(), n, y.data());
    add_inplace(x.data(), y.data(), n * d);
    for (int64_t t = 0; t < n; ++t) rms_norm(x.data() + t * d, L.ffn_norm, d, h.rms_eps, xn.data() + t * d);
    feed_forward(il, xn.data(), n, y.data());
    add_inplace(x.data(), y.data(), n * d);
  }
  for (int64_t t = 0; t < n; ++t) rms_norm(x.data() + t * d, w_.output_norm, d, h.rms_eps, xn.data() + t * d);
  logits.resize(size_t(n * h.n_vocab));
  reference_matmul(w_.output, xn.data(), n, logits.data());
  slot.n_past += n;
}

void Deepseek2Reference::attention(int64_t il, const float* x, int64_t n, float* out) {
  const Deepseek2Hparams& h = w_.hp;
  const Deepseek2Layer& L = w_.layers[size_t(il)];
  const int64_t qhd = h.q_head_dim(), nope = h.qk_nope, rope = h.qk_rope, lora = h.kv_lora_rank;
  const int64_t nh = h.n_head;

  std::vector<float> q(size_t(n * nh * qhd));
  if (!L.wq.empty()) {
    reference_matmul(L.wq, x, n, q.data());
  } else {
    std::vector<float> qa(size_t(n * h.q_lora_rank));
    reference_matmul(L.wq_a, x, n, qa.data());
    for (int64_t t = 0; t < n; ++t)
      rms_norm(qa.data() + t * h.q_lora_rank, L.q_a_norm, h.q_lora_rank, h.rms_eps, qa.data() + t * h.q_lora_rank);
    reference_matmul(L.wq_b, qa.data(), n, q.data());
  }

  // New cache entries: normalised latent and rotated shared rope key.
  std::vector<float> kv(size_t(n * (lora + rope)));
  reference_matmul(L.wkv_a_mqa, x, n, kv.data());
  const int64_t past = cur_->n_past;
  auto& ckv = cur_->ckv[size_t(il)];
  auto& kpe = cur_->kpe[size_t(il)];
  ckv.resize(size_t((past + n) * lora));
  kpe.resize(size_t((past + n) * rope));
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = past + t;
    const float* src = kv.data() + t * (lora + rope);
    rms_norm(src, L.kv_a_norm, lora, h.rms_eps, ckv.data() + pos * lora);
    float* k = kpe.data() + pos * rope;
    std::copy_n(src + lora, rope, k);
    rope_.apply(k, pos);
  }

  const float scale = h.attention_scale();
  std::vector<float> heads_out(size_t(n * nh * h.v_head));
  tbb::parallel_for(int64_t(0), nh, [&](int64_t hd) {
    std::vector<float> q_nope(size_t(n * nope)), q_pe(size_t(n * rope)), q_lat(size_t(n * lora));
    for (int64_t t = 0; t < n; ++t) {
      const float* qh = q.data() + (t * nh + hd) * qhd;
      std::copy_n(qh, nope, q_nope.data() + t * nope);
      std::copy_n(qh + nope, rope, q_pe.data() + t * rope);
      rope_.apply(q_pe.data() + t * rope, past + t);
    }
    // Absorb q_nope into the latent space: q_lat = k_b^T-side product.
    if (!L.wk_b.empty()) {
      reference_matmul(L.wk_b.slice(hd, nh), q_nope.data(), n, q_lat.data());
    } else {
      reference_matmul_transposed(row_range(L.wkv_b, hd * (nope + h.v_head), nope), q_nope.data(), n,
                                  q_lat.data());
    }
    std::vector<float> o_lat(size_t(n * lora), 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t pos = past + t;
      std::vector<float> scores(size_t(pos + 1));
      for (int64_t s = 0; s <= pos; ++s) {
        double acc = 0.0;
        for (int64_t r = 0; r < lora; ++r) acc += double(q_lat[size_t(t * lora + r)]) * ckv[size_t(s * lora + r)];
        for (int64_t r = 0; r < rope; ++r) acc += double(q_pe[size_t(t * rope + r)]) * kpe[size_t(s * rope + r)];
        scores[size_t(s)] = float(acc) * scale;
      }
      softmax_inplace(scores.data(), pos + 1);
      float* o = o_lat.data() + t * lora;
      for (int64_t s = 0; s <= pos; ++s)
        for (int64_t r = 0; r < lora; ++r) o[r] += scores[size_t(s)] * ckv[size_t(s * lora + r)];
    }
    std::vector<float> o_head(size_t(n * h.v_head));
    if (!L.wv_b.empty()) {
      reference_matmul(L.wv_b.slice(hd, nh), o_lat.data(), n, o_head.data());
    } else {
      reference_matmul(row_range(L.wkv_b, hd * (nope + h.v_head) + nope, h.v_head), o_lat.data(), n,
                       o_head.data());
    }
    for (int64_t t = 0; t < n; ++t)
      std::copy_n(o_head.data() + t * h.v_head, h.v_head, heads_out.data() + (t * nh + hd) * h.v_head);
  });
  reference_matmul(L.wo, heads_out.data(), n, out);
}

void Deepseek2Reference::feed_forward(int64_t il, const float* x, int64_t n, float* out) {
  const Deepseek2Hparams& h = w_.hp;
  const Deepseek2Layer& L = w_.layers[size_t(il)];
  const int64_t d = h.n_embd;
  auto swiglu = [&](const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down, float* dst) {
    const int64_t f = gate.rows;
    std::vector<float> g(size_t(n * f)), u(size_t(n * f));
    reference_matmul(gate, x, n, g.data());
    reference_matmul(up, x, n, u.data());
    silu_mul(g.data(), u.data(), n * f, g.data());
    reference_matmul(down, g.data(), n, dst);
  };
  if (!L.is_moe()) {
    swiglu(L.ffn_gate, L.ffn_up, L.ffn_down, out);
    return;
  }
  const int64_t ne = h.n_expert, k = h.n_expert_used;
  std::vector<float> router(size_t(n * ne));
  reference_matmul(L.gate_inp, x, n, router.data());
  MoeRouterConfig cfg{h.gating, ne, k, h.n_expert_groups, h.n_expert_groups_used, h.expert_weights_norm,
                      h.expert_weights_scale};
  std::vector<int32_t> ids(size_t(n * k));
  std::vector<float> weights(size_t(n * k));
  for (int64_t t = 0; t < n; ++t)
    route_token(cfg, router.data() + t * ne, L.exp_probs_b, ids.data() + t * k, weights.data() + t * k);
  experts_->forward(il, x, n, ids.data(), weights.data(), k, out);
  if (!L.gate_shexp.empty()) {
    std::vector<float> shared(size_t(n * d));
    swiglu(L.gate_shexp, L.up_shexp, L.down_shexp, shared.data());
    add_inplace(out, shared.data(), n * d);
  }
}

}  // namespace tandem
