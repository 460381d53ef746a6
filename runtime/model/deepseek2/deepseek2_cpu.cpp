#include "runtime/model/deepseek2/deepseek2_cpu.h"

#include <algorithm>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/model/deepseek2/deepseek2_reference.h"
#include "runtime/model/moe_router.h"
#include "runtime/model/reference_ops.h"
#include "runtime/model/sequence_chunks.h"
#include "runtime/quant/dequantize.h"

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

int thread_count(int requested) {
  if (requested > 0) return requested;
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

template <typename T>
T* sized(std::vector<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

}  // namespace

Deepseek2Cpu::Deepseek2Cpu(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts,
                           Deepseek2CpuOptions options)
    : w_(w),
      experts_(std::move(experts)),
      isa_(options.isa.value_or(experts::selected_cpu_isa())),
      pool_(thread_count(options.threads)),
      mm_(pool_, isa_),
      rope_(rope_params(w.hp)) {
  if (options.sequences < 1) fail("the CPU pass needs at least one sequence slot, not ", options.sequences);
  if (options.max_context < 0) fail("max_context ", options.max_context, " is negative");
  max_context_ = options.max_context > 0 ? options.max_context
                                         : (w.hp.n_ctx_train > 0 ? w.hp.n_ctx_train : int64_t(1) << 20);
  for (int s = 0; s < options.sequences; ++s) caches_.push_back(make_cache());
  n_past_.assign(size_t(options.sequences), 0);
  if (!experts_) experts_ = std::make_shared<ReferenceRoutedExperts>(Deepseek2Reference::expert_layers(w));
  mm_.set_release_mapped(options.release_mapped_weights);
  const Deepseek2Hparams& h = w.hp;
  k_b_owned_.resize(w.layers.size());
  k_b_.resize(w.layers.size());
  for (size_t il = 0; il < w.layers.size(); ++il) {
    const Deepseek2Layer& L = w.layers[il];
    if (!L.wk_b.empty()) {
      k_b_[il] = L.wk_b;
      continue;
    }
    // Transpose each head's k rows of attn_kv_b ([qk_nope x kv_lora]) to [kv_lora x qk_nope].
    const int64_t nope = h.qk_nope, lora = h.kv_lora_rank, per_head = nope + h.v_head;
    auto& t = k_b_owned_[il];
    t.assign(size_t(h.n_head * lora * nope), 0.0f);
    std::vector<float> row(static_cast<size_t>(lora));
    for (int64_t hd = 0; hd < h.n_head; ++hd)
      for (int64_t r = 0; r < nope; ++r) {
        dequantize_row(L.wkv_b.type, L.wkv_b.row(hd * per_head + r), row.data(), lora);
        for (int64_t c = 0; c < lora; ++c) t[size_t((hd * lora + c) * nope + r)] = row[size_t(c)];
      }
    WeightMatrix m;
    m.name = L.wkv_b.name + " (k part, transposed)";
    m.type = GgmlType::F32;
    m.rows = h.n_head * lora;
    m.cols = nope;
    m.row_bytes = uint64_t(nope) * 4;
    m.data = reinterpret_cast<const uint8_t*>(t.data());
    k_b_[il] = m;
  }
}

cpu::LatentKvCacheCpu Deepseek2Cpu::make_cache() const {
  return cpu::LatentKvCacheCpu(w_.hp.n_layer, w_.hp.kv_lora_rank, w_.hp.qk_rope);
}

void Deepseek2Cpu::reset() {
  std::fill(n_past_.begin(), n_past_.end(), 0);
  for (auto& c : caches_) c.reset();
}

int64_t Deepseek2Cpu::n_past(int slot) const {
  check_slot(*this, slot, "n_past");
  return n_past_[size_t(slot)];
}

void Deepseek2Cpu::truncate(int slot, int64_t n) {
  check_truncate(*this, slot, n);
  caches_[size_t(slot)].truncate(n);
  n_past_[size_t(slot)] = n;
}

void Deepseek2Cpu::copy_prefix(int src, int dst, int64_t n) {
  check_copy_prefix(*this, src, dst, n);
  caches_[size_t(dst)].assign_prefix(caches_[size_t(src)], n);
  n_past_[size_t(dst)] = n;
}

void Deepseek2Cpu::forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) {
  check_chunks(*this, chunks);
  std::vector<Segment> segs;
  batch_tokens_.clear();
  for (const SequenceChunk& c : chunks) {
    segs.push_back({&caches_[size_t(c.slot)], int64_t(batch_tokens_.size()), int64_t(c.tokens.size())});
    batch_tokens_.insert(batch_tokens_.end(), c.tokens.begin(), c.tokens.end());
  }
  if (chunks.empty()) {
    last_logits.clear();
    return;
  }
  run(segs, batch_tokens_, false, last_logits);
  for (const SequenceChunk& c : chunks) n_past_[size_t(c.slot)] += int64_t(c.tokens.size());
}

void Deepseek2Cpu::norm_rows(const float* x, const float* weight, int64_t n, int64_t width, float* out) {
  const float eps = w_.hp.rms_eps;
  pool_.parallel_for(n, std::max<int64_t>(1, 16384 / width), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) cpu::rms_norm(x + t * width, weight, width, eps, out + t * width);
  });
}

void Deepseek2Cpu::forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
  const Segment seg{&caches_[0], 0, int64_t(tokens.size())};
  run({&seg, 1}, tokens, true, logits);
  n_past_[0] += int64_t(tokens.size());
}

void Deepseek2Cpu::forward_last(std::span<const int32_t> tokens, std::vector<float>& last_logits) {
  const Segment seg{&caches_[0], 0, int64_t(tokens.size())};
  run({&seg, 1}, tokens, false, last_logits);
  n_past_[0] += int64_t(tokens.size());
}

// all_logits: every row's logits; otherwise each segment's last row's (one row per segment).
void Deepseek2Cpu::run(std::span<const Segment> segs, std::span<const int32_t> tokens, bool all_logits,
                       std::vector<float>& logits) {
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
    norm_rows(x.data(), L.attn_norm, n, d, xn.data());
    attention_rows(il, xn.data(), n, segs, y.data());
    cpu::add_inplace(x.data(), y.data(), n * d);
    norm_rows(x.data(), L.ffn_norm, n, d, xn.data());
    ffn(il, xn.data(), n, y.data());
    cpu::add_inplace(x.data(), y.data(), n * d);
  }
  if (all_logits) {
    norm_rows(x.data(), w_.output_norm, n, d, xn.data());
    logits.resize(size_t(n * h.n_vocab));
    mm_.matmul(w_.output, xn.data(), n, logits.data());
    return;
  }
  // Only each segment's last row goes through the head.
  const int64_t rows = int64_t(segs.size());
  float* last = sized(last_, rows * d);
  for (int64_t i = 0; i < rows; ++i) {
    const Segment& sg = segs[size_t(i)];
    std::copy_n(x.data() + (sg.row0 + sg.n - 1) * d, d, last + i * d);
  }
  norm_rows(last, w_.output_norm, rows, d, xn.data());
  logits.resize(size_t(rows * h.n_vocab));
  mm_.matmul(w_.output, xn.data(), rows, logits.data());
}

void Deepseek2Cpu::attention(int64_t il, const float* x, int64_t n, cpu::LatentKvCacheCpu& cache, float* out) {
  const Deepseek2Hparams& h = w_.hp;
  if (cache.n_layer() != h.n_layer || cache.kv_lora() != h.kv_lora_rank || cache.row_width() != h.kv_lora_rank + h.qk_rope)
    fail("attention: the latent cache is not shaped for this model");
  const Segment seg{&cache, 0, n};
  attention_rows(il, x, n, {&seg, 1}, out);
}

void Deepseek2Cpu::attention_rows(int64_t il, const float* x, int64_t n, std::span<const Segment> segs, float* out) {
  const Deepseek2Hparams& h = w_.hp;
  if (il < 0 || il >= h.n_layer) fail("attention: layer ", il, " is outside the model's ", h.n_layer);
  if (n <= 0) return;
  const Deepseek2Layer& L = w_.layers[size_t(il)];
  const int64_t qhd = h.q_head_dim(), nope = h.qk_nope, rope = h.qk_rope, lora = h.kv_lora_rank;
  const int64_t nh = h.n_head, width = lora + rope;

  // Every matrix over all rows of the pass.
  float* q = sized(q_, n * nh * qhd);
  if (!L.wq.empty()) {
    mm_.matmul(L.wq, x, n, q);
  } else {
    float* qa = sized(qa_, n * h.q_lora_rank);
    mm_.matmul(L.wq_a, x, n, qa);
    norm_rows(qa, L.q_a_norm, n, h.q_lora_rank, qa);
    mm_.matmul(L.wq_b, qa, n, q);
  }
  float* kv = sized(kv_, n * width);
  mm_.matmul(L.wkv_a_mqa, x, n, kv);
  // Queries in the cache's row layout: q_nope absorbed through k_b (rotated q_pe added below).
  float* qcat = sized(qcat_, n * nh * width);
  mm_.grouped(k_b_[size_t(il)], cpu::RowGroups{nh, lora, 0, lora},
              cpu::GroupedIo{q, nh * qhd, qhd, qcat, nh * width, width}, n);
  float* olat = sized(olat_, n * nh * lora);

  // Per sequence: new cache rows (normalised latent, rotated shared rope key) and rotated q_pe
  // at its own positions, then attention over its own cache.
  for (const Segment& sg : segs) {
    cpu::LatentKvCacheCpu& cache = *sg.cache;
    const int64_t pos0 = cache.length(il);
    if (rope_first_pos_ != pos0 || rope_n_ < sg.n) {
      rope_.compute(pos0, sg.n);
      rope_first_pos_ = pos0, rope_n_ = sg.n;
    }
    float* rows = cache.append(il, sg.n);
    for (int64_t t = 0; t < sg.n; ++t) {
      const float* src = kv + (sg.row0 + t) * width;
      float* dst = rows + t * width;
      cpu::rms_norm(src, L.kv_a_norm, lora, h.rms_eps, dst);
      std::copy_n(src + lora, rope, dst + lora);
      rope_.apply(dst + lora, t);
    }
    for (int64_t t = 0; t < sg.n; ++t)
      for (int64_t hd = 0; hd < nh; ++hd) {
        const int64_t r = sg.row0 + t;
        float* pe = qcat + (r * nh + hd) * width + lora;
        std::copy_n(q + (r * nh + hd) * qhd + nope, rope, pe);
        rope_.apply(pe, t);
      }
    cpu::mla_attention(pool_, isa_, cpu::MlaShape{nh, lora, width, h.attention_scale()}, cache.rows(il), pos0, sg.n,
                       qcat + sg.row0 * nh * width, olat + sg.row0 * nh * lora);
  }

  // Attended latents back to value space per head, then the output projection.
  float* heads = sized(heads_, n * nh * h.v_head);
  const cpu::GroupedIo vio{olat, nh * lora, lora, heads, nh * h.v_head, h.v_head};
  if (!L.wv_b.empty())
    mm_.grouped(L.wv_b, cpu::RowGroups{nh, h.v_head, 0, h.v_head}, vio, n);
  else
    mm_.grouped(L.wkv_b, cpu::RowGroups{nh, h.v_head, nope, nope + h.v_head}, vio, n);
  mm_.matmul(L.wo, heads, n, out);
}

void Deepseek2Cpu::head(const float* x, int64_t n, float* logits) {
  if (n > 0) mm_.matmul(w_.output, x, n, logits);
}

void Deepseek2Cpu::swiglu(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                          const float* x, int64_t n, float* out) {
  const int64_t f = gate.rows;
  float* g = sized(g_, n * f);
  float* u = sized(u_, n * f);
  mm_.matmul(gate, x, n, g);
  mm_.matmul(up, x, n, u);
  pool_.parallel_for(n, 1, [&](int64_t b, int64_t e) { cpu::silu_mul(g + b * f, u + b * f, (e - b) * f, g + b * f); });
  mm_.matmul(down, g, n, out);
}

void Deepseek2Cpu::ffn(int64_t il, const float* x, int64_t n, float* out) {
  const Deepseek2Hparams& h = w_.hp;
  if (il < 0 || il >= h.n_layer) fail("ffn: layer ", il, " is outside the model's ", h.n_layer);
  if (n <= 0) return;
  const Deepseek2Layer& L = w_.layers[size_t(il)];
  const int64_t d = h.n_embd;
  if (!L.is_moe()) {
    swiglu(L.ffn_gate, L.ffn_up, L.ffn_down, x, n, out);
    return;
  }
  const int64_t ne = h.n_expert, k = h.n_expert_used;
  float* router = sized(router_, n * ne);
  mm_.matmul(L.gate_inp, x, n, router);
  const MoeRouterConfig cfg{h.gating, ne, k, h.n_expert_groups, h.n_expert_groups_used, h.expert_weights_norm,
                            h.expert_weights_scale};
  int32_t* ids = sized(ids_, n * k);
  float* weights = sized(weights_, n * k);
  for (int64_t t = 0; t < n; ++t) route_token(cfg, router + t * ne, L.exp_probs_b, ids + t * k, weights + t * k);
  notify_routing(il, ids, n, k);
  experts_->forward(il, x, n, ids, weights, k, out);
  if (!L.gate_shexp.empty()) {
    float* shared = sized(shared_, n * d);
    swiglu(L.gate_shexp, L.up_shexp, L.down_shexp, x, n, shared);
    cpu::add_inplace(out, shared, n * d);
  }
}

}  // namespace tandem
