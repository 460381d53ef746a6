#include "runtime/model/deepseek2/deepseek2_hybrid.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/elementwise.h"
#include "runtime/gpu/gpu_device.h"
#include "runtime/gpu/gpu_weight.h"
#include "runtime/gpu/latent_kv_cache.h"
#include "runtime/gpu/matmul.h"
#include "runtime/gpu/mla_attention.h"
#include "runtime/gpu/moe_experts.h"
#include "runtime/gpu/rope.h"
#include "runtime/gpu/row_ops.h"
#include "runtime/gpu/topk_router.h"
#include "runtime/model/reference_ops.h"
#include "runtime/quant/dequantize.h"

namespace tandem {

using gpu::GpuBuffer;
using gpu::GpuSpan;
using gpu::GpuWeight;

namespace {

struct GpuLayer {
  GpuSpan attn_norm, q_a_norm, kv_a_norm, ffn_norm, probs_bias;
  GpuWeight wq, wq_a, wq_b, wkv_a, wo;
  gpu::MlaWeights mla;
  GpuWeight ffn_gate_up, ffn_down;  // gate rows then up rows: one matmul for both
  GpuWeight router;
  GpuWeight sh_gate_up, sh_down;
  bool moe = false;
  const gpu::GpuExpertLayer* gpu_experts = nullptr;  // routed experts resident here (null: none)
  bool cpu_experts = true;  // some routed experts run on the CPU (the segment ends at the router)
};

// Batches up to this many tokens get their logits copied to host-visible memory inside the last
// segment (decode: no separate download); longer ones are downloaded.
constexpr uint32_t kHostLogitTokens = 8;

// One recorded piece of a step: `main` ends at an MoE router (or the output head); `shared`, when
// present, is that layer's shared experts, submitted right behind `main` so that the GPU runs them
// while the CPU computes the routed experts.
struct Segment {
  std::unique_ptr<gpu::CommandSequence> main, shared;
};

// Activations for up to max_batch tokens.
struct Activations {
  GpuBuffer x, xn, q, qa, kv, q_lat, o_lat, attn, ffn_gu, ffn_h, router_logits, expert_out, logits, positions;
  // Routing where GPU experts read it, and their scratch (only when a layer has GPU experts).
  GpuBuffer ids, weights, expert_route, expert_hidden, expert_parts;
  // Host-visible memory the CPU reads or writes between segments (the router writes ids and
  // weights here directly; the expert output is copied to expert_out first: a kernel reading it
  // across PCIe took 90 us at hidden 7168 on the H100, the copy a few).
  GpuBuffer x_host, xn_host, ids_host, weights_host, expert_host, positions_host, logits_host;
};

}  // namespace

struct Deepseek2Hybrid::Impl {
  const Deepseek2Weights& w;
  std::shared_ptr<RoutedExperts> experts;
  Deepseek2HybridOptions opt;
  std::unique_ptr<gpu::GpuDevice> dev;
  std::vector<GpuBuffer> storage;  // every weight upload
  std::vector<GpuLayer> layers;
  GpuSpan output_norm;
  GpuWeight output;
  std::unique_ptr<gpu::LatentKvCache> cache;
  Activations act;
  int64_t n_past = 0;
  uint32_t ff_width = 0;  // widest FFN (dense or shared experts)
  // Recorded segments per batch size: segment i ends at the router of the i-th MoE layer with
  // CPU experts (cpu_moe_layers[i]).
  std::map<uint32_t, std::vector<Segment>> recorded;
  std::vector<int64_t> cpu_moe_layers;
  std::vector<std::unique_ptr<gpu::GpuExpertLayer>> gpu_expert_layers;
  uint32_t gpu_expert_ffn = 0;  // widest GPU-resident expert (scratch sizing); 0: none
  std::vector<gpu::KernelTiming> last_timings;
  HybridStepTimes times;

  Impl(const Deepseek2Weights& weights, std::shared_ptr<RoutedExperts> ex, const Deepseek2HybridOptions& o)
      : w(weights), experts(std::move(ex)), opt(o) {}

  void uploaded(uint64_t file_bytes) const {
    if (opt.on_load_bytes) opt.on_load_bytes("uploading to GPU", file_bytes);
  }

  GpuSpan upload_vector(const float* data, int64_t n, const char* name) {
    storage.push_back(dev->allocate(uint64_t(n) * 4, name));
    dev->upload(storage.back().span(), data, uint64_t(n) * 4);
    uploaded(uint64_t(n) * 4);
    return storage.back().span();
  }

  // Weights of a type the GPU kernels read directly go up as they are; others are widened to F16.
  GpuWeight upload_matrix(const WeightMatrix& m) {
    uploaded(uint64_t(m.rows) * m.row_bytes);
    storage.emplace_back();
    if (gpu::matmul_supports(m.type))
      return gpu::upload_weight(*dev, storage.back(), m.type, uint32_t(m.rows), uint32_t(m.cols), m.data,
                                m.name.c_str());
    std::vector<uint16_t> half(size_t(m.rows * m.cols));
    std::vector<float> row(static_cast<size_t>(m.cols));
    for (int64_t r = 0; r < m.rows; ++r) {
      reference_row(m, r, row.data());
      for (int64_t c = 0; c < m.cols; ++c) half[size_t(r * m.cols + c)] = f32_to_f16(row[size_t(c)]);
    }
    return gpu::upload_weight(*dev, storage.back(), GgmlType::F16, uint32_t(m.rows), uint32_t(m.cols), half.data(),
                              m.name.c_str());
  }

  // gate and up stacked into one matrix (2*ff rows): one matmul yields [gate | up] per token.
  GpuWeight upload_gate_up(const WeightMatrix& gate, const WeightMatrix& up) {
    if (gate.rows != up.rows || gate.cols != up.cols)
      fail("tensors ", gate.name, " and ", up.name, ": gate and up shapes differ");
    const std::string name = gate.name + " + " + up.name;
    uploaded(uint64_t(gate.rows) * gate.row_bytes + uint64_t(up.rows) * up.row_bytes);
    if (gate.type == up.type && gpu::matmul_supports(gate.type) && gate.row_bytes == up.row_bytes) {
      const uint64_t half = uint64_t(gate.rows) * gate.row_bytes;
      std::vector<uint8_t> both(size_t(2 * half));
      std::memcpy(both.data(), gate.data, half);
      std::memcpy(both.data() + half, up.data, half);
      storage.emplace_back();
      return gpu::upload_weight(*dev, storage.back(), gate.type, uint32_t(2 * gate.rows), uint32_t(gate.cols),
                                both.data(), name.c_str());
    }
    std::vector<uint16_t> half(size_t(2 * gate.rows * gate.cols));
    std::vector<float> row(static_cast<size_t>(gate.cols));
    for (int64_t r = 0; r < 2 * gate.rows; ++r) {
      reference_row(r < gate.rows ? gate : up, r % gate.rows, row.data());
      for (int64_t c = 0; c < gate.cols; ++c) half[size_t(r * gate.cols + c)] = f32_to_f16(row[size_t(c)]);
    }
    return upload_f16(half, uint32_t(2 * gate.rows), uint32_t(gate.cols), name);
  }

  GpuWeight upload_f16(std::vector<uint16_t>& half, uint32_t rows, uint32_t cols, const std::string& name) {
    storage.emplace_back();
    return gpu::upload_weight(*dev, storage.back(), GgmlType::F16, rows, cols, half.data(), name.c_str());
  }

  // Legacy files carry attn_kv_b; the absorbed form needs k_b (per head: kv_lora rows of qk_nope,
  // the transpose of kv_b's k rows) and v_b (kv_b's v rows), built here in F16.
  void split_kv_b(const WeightMatrix& kv_b, GpuLayer& L) {
    const Deepseek2Hparams& h = w.hp;
    const int64_t nope = h.qk_nope, v = h.v_head, lora = h.kv_lora_rank;
    uploaded(uint64_t(kv_b.rows) * kv_b.row_bytes);
    std::vector<uint16_t> kb(size_t(h.n_head * lora * nope)), vb(size_t(h.n_head * v * lora));
    std::vector<float> row(static_cast<size_t>(lora));
    for (int64_t hd = 0; hd < h.n_head; ++hd) {
      for (int64_t j = 0; j < nope + v; ++j) {
        reference_row(kv_b, hd * (nope + v) + j, row.data());
        for (int64_t r = 0; r < lora; ++r) {
          if (j < nope)
            kb[size_t((hd * lora + r) * nope + j)] = f32_to_f16(row[size_t(r)]);
          else
            vb[size_t((hd * v + (j - nope)) * lora + r)] = f32_to_f16(row[size_t(r)]);
        }
      }
    }
    L.mla.k_b = upload_f16(kb, uint32_t(h.n_head * lora), uint32_t(nope), kv_b.name + " (k part)");
    L.mla.v_b = upload_f16(vb, uint32_t(h.n_head * v), uint32_t(lora), kv_b.name + " (v part)");
  }

  void upload_weights() {
    const Deepseek2Hparams& h = w.hp;
    for (int64_t il = 0; il < h.n_layer; ++il) {
      const Deepseek2Layer& s = w.layers[size_t(il)];
      GpuLayer L;
      L.attn_norm = upload_vector(s.attn_norm, h.n_embd, "attn_norm");
      if (!s.wq.empty()) {
        L.wq = upload_matrix(s.wq);
      } else {
        L.wq_a = upload_matrix(s.wq_a);
        L.q_a_norm = upload_vector(s.q_a_norm, h.q_lora_rank, "attn_q_a_norm");
        L.wq_b = upload_matrix(s.wq_b);
      }
      L.wkv_a = upload_matrix(s.wkv_a_mqa);
      L.kv_a_norm = upload_vector(s.kv_a_norm, h.kv_lora_rank, "attn_kv_a_norm");
      if (!s.wk_b.empty()) {
        L.mla.k_b = upload_matrix(s.wk_b);
        L.mla.v_b = upload_matrix(s.wv_b);
      } else {
        split_kv_b(s.wkv_b, L);
      }
      L.wo = upload_matrix(s.wo);
      L.ffn_norm = upload_vector(s.ffn_norm, h.n_embd, "ffn_norm");
      if (s.is_moe()) {
        L.moe = true;
        L.router = upload_matrix(s.gate_inp);
        if (s.exp_probs_b) L.probs_bias = upload_vector(s.exp_probs_b, h.n_expert, "exp_probs_b");
        if (!s.gate_shexp.empty()) {
          L.sh_gate_up = upload_gate_up(s.gate_shexp, s.up_shexp);
          L.sh_down = upload_matrix(s.down_shexp);
          ff_width = std::max(ff_width, uint32_t(s.gate_shexp.rows));
        }
        upload_routed_experts(il, s, L);
        if (L.cpu_experts) cpu_moe_layers.push_back(il);
      } else {
        L.ffn_gate_up = upload_gate_up(s.ffn_gate, s.ffn_up);
        L.ffn_down = upload_matrix(s.ffn_down);
        ff_width = std::max(ff_width, uint32_t(s.ffn_gate.rows));
      }
      layers.push_back(std::move(L));
    }
    output_norm = upload_vector(w.output_norm, h.n_embd, "output_norm");
    output = upload_matrix(w.output);
  }

  // The layer's GPU-resident routed experts (opt.gpu_experts), only those; types without a GPU
  // kernel (or gate and up of different types) are widened to F16 as other weights are.
  void upload_routed_experts(int64_t il, const Deepseek2Layer& s, GpuLayer& L) {
    if (size_t(il) >= opt.gpu_experts.size() || opt.gpu_experts[size_t(il)].empty()) return;
    const std::vector<uint8_t>& mask = opt.gpu_experts[size_t(il)];
    const int64_t n_expert = w.hp.n_expert;
    if (int64_t(mask.size()) != n_expert)
      fail("GPU experts of layer ", il, ": a mask of ", mask.size(), " entries for ", n_expert, " experts");
    L.cpu_experts = std::find(mask.begin(), mask.end(), uint8_t(0)) != mask.end();
    if (std::find_if(mask.begin(), mask.end(), [](uint8_t m) { return m != 0; }) == mask.end()) return;
    const WeightMatrix &gate = s.gate_exps, &up = s.up_exps, &down = s.down_exps;
    const int64_t ffn = gate.rows / n_expert, hidden = gate.cols;
    auto direct = [](const WeightMatrix& m) {
      return gpu::matmul_supports(m.type) && m.cols % int64_t(ggml_type_info(m.type).block_size) == 0;
    };
    const bool gu_direct = gate.type == up.type && direct(gate) && direct(up);
    gpu::GpuExpertsShape shape{uint32_t(n_expert), uint32_t(hidden), uint32_t(ffn),
                               gu_direct ? gate.type : GgmlType::F16, direct(down) ? down.type : GgmlType::F16};
    auto layer = std::make_unique<gpu::GpuExpertLayer>(*dev, shape, mask);
    std::vector<uint16_t> g16, u16, d16;
    // Rows [r0, r0 + rows) of m in F16 (the widened upload).
    auto widen = [](const WeightMatrix& m, int64_t r0, int64_t rows, std::vector<uint16_t>& out) {
      out.resize(size_t(rows * m.cols));
      std::vector<float> row(static_cast<size_t>(m.cols));
      for (int64_t r = 0; r < rows; ++r) {
        reference_row(m, r0 + r, row.data());
        for (int64_t c = 0; c < m.cols; ++c) out[size_t(r * m.cols + c)] = f32_to_f16(row[size_t(c)]);
      }
      return static_cast<const void*>(out.data());
    };
    for (int64_t e = 0; e < n_expert; ++e) {
      if (!mask[size_t(e)]) continue;
      const void* g = gu_direct ? gate.row(e * ffn) : widen(gate, e * ffn, ffn, g16);
      const void* u = gu_direct ? up.row(e * ffn) : widen(up, e * ffn, ffn, u16);
      const void* d = direct(down) ? down.row(e * hidden) : widen(down, e * hidden, hidden, d16);
      layer->upload_expert(uint32_t(e), g, u, d);
      uploaded(uint64_t(ffn) * (gate.row_bytes + up.row_bytes) + uint64_t(hidden) * down.row_bytes);
    }
    L.gpu_experts = layer.get();
    gpu_expert_ffn = std::max(gpu_expert_ffn, uint32_t(ffn));
    gpu_expert_layers.push_back(std::move(layer));
  }

  void allocate_activations() {
    const Deepseek2Hparams& h = w.hp;
    const uint64_t B = opt.max_batch, f = 4;
    auto dev_buf = [&](uint64_t floats, const char* what) { return dev->allocate(std::max<uint64_t>(floats, 1) * f, what); };
    auto host_buf = [&](uint64_t floats, const char* what) {
      return dev->allocate(std::max<uint64_t>(floats, 1) * f, what, gpu::MemoryKind::HostVisible);
    };
    const uint64_t d = uint64_t(h.n_embd), nh = uint64_t(h.n_head), L = uint64_t(h.kv_lora_rank);
    act.x = dev_buf(B * d, "activations x");
    act.xn = dev_buf(B * d, "activations xn");
    act.q = dev_buf(B * nh * uint64_t(h.q_head_dim()), "activations q");
    act.qa = dev_buf(B * uint64_t(std::max<int64_t>(h.q_lora_rank, 1)), "activations q_a");
    act.kv = dev_buf(B * (L + uint64_t(h.qk_rope)), "activations kv");
    act.q_lat = dev_buf(B * nh * L, "activations q_lat");
    act.o_lat = dev_buf(B * nh * L, "activations o_lat");
    act.attn = dev_buf(B * nh * uint64_t(h.v_head), "activations attention");
    act.ffn_gu = dev_buf(B * 2 * ff_width, "activations ffn gate+up");
    act.ffn_h = dev_buf(B * ff_width, "activations ffn hidden");
    act.expert_out = dev_buf(B * d, "routed expert output");
    act.router_logits = dev_buf(B * uint64_t(std::max<int64_t>(h.n_expert, 1)), "router logits");
    act.logits = dev_buf(B * uint64_t(h.n_vocab), "logits");
    act.positions = dev_buf(B, "positions");
    act.x_host = host_buf(B * d, "embeddings (host)");
    act.xn_host = host_buf(B * d, "expert input (host)");
    act.ids_host = host_buf(B * uint64_t(std::max<int64_t>(h.n_expert_used, 1)), "expert ids (host)");
    act.weights_host = host_buf(B * uint64_t(std::max<int64_t>(h.n_expert_used, 1)), "expert weights (host)");
    act.expert_host = host_buf(B * d, "routed expert output (host)");
    act.positions_host = host_buf(B, "positions (host)");
    act.logits_host = host_buf(std::min<uint64_t>(B, kHostLogitTokens) * uint64_t(h.n_vocab), "logits (host)");
    if (gpu_expert_ffn) {
      const uint64_t pairs = B * uint64_t(std::max<int64_t>(h.n_expert_used, 1));
      act.ids = dev_buf(pairs, "expert ids");
      act.weights = dev_buf(pairs, "expert weights");
      const auto sb = gpu::gpu_expert_scratch_bytes(uint32_t(h.n_expert), uint32_t(d), gpu_expert_ffn, uint32_t(pairs));
      act.expert_route = dev->allocate(sb.route, "GPU experts routing");
      act.expert_hidden = dev->allocate(sb.hidden, "GPU experts hidden");
      act.expert_parts = dev->allocate(sb.parts, "GPU experts outputs");
    }
  }

  // Records the GPU work of a batch of n tokens as segments split at each MoE router.
  std::vector<Segment> record(uint32_t n) {
    const Deepseek2Hparams& h = w.hp;
    const uint32_t d = uint32_t(h.n_embd), nh = uint32_t(h.n_head), qhd = uint32_t(h.q_head_dim());
    const uint32_t lora = uint32_t(h.kv_lora_rank), rope = uint32_t(h.qk_rope), nope = uint32_t(h.qk_nope);
    const uint32_t k = uint32_t(h.n_expert_used);
    const uint64_t xbytes = uint64_t(n) * d * 4;
    std::vector<Segment> segs;
    auto begin_segment = [&] {
      segs.emplace_back();
      segs.back().main = std::make_unique<gpu::CommandSequence>(*dev, opt.profile);
      return segs.back().main.get();
    };
    gpu::CommandSequence* seq = begin_segment();
    seq->copy(act.x_host.sub(0, xbytes), act.x.sub(0, xbytes));
    seq->copy(act.positions_host.sub(0, uint64_t(n) * 4), act.positions.sub(0, uint64_t(n) * 4));

    gpu::RopeParams rp;
    rp.dim = rope;
    rp.freq_base = h.rope_freq_base;
    rp.freq_scale = h.rope_freq_scale;
    rp.n_ctx_orig = uint32_t(h.rope_yarn_orig_ctx);
    rp.beta_fast = h.rope_yarn_beta_fast;
    rp.beta_slow = h.rope_yarn_beta_slow;
    if (h.rope_yarn && h.rope_freq_scale != 1.0f) {
      rp.ext_factor = 1.0f;
      // The kernel multiplies by YaRN's 1 + 0.1 ln(1/s); deepseek2 wants unit magnitude here
      // (its correction lives in the attention scale), so cancel it.
      rp.attn_factor = 1.0f / (1.0f + 0.1f * std::log(1.0f / h.rope_freq_scale));
    }
    const gpu::MlaShape shape{nh, lora, nope, rope, uint32_t(h.v_head)};
    const float scale = h.attention_scale();
    gpu::MatMulLayout residual;  // output projections add straight into x
    residual.accumulate = true;

    // x += routed experts of the previous MoE layer in the same pass as the norm that follows.
    bool experts_pending = false;
    auto norm_x = [&](const GpuSpan& weight) {
      if (experts_pending) {
        seq->copy(act.expert_host.sub(0, xbytes), act.expert_out.sub(0, xbytes));
        gpu::record_add_rms_norm(*seq, act.x.span(), act.expert_out.span(), weight, act.xn.span(), {d, n, 0, 0},
                                 h.rms_eps);
      } else {
        gpu::record_rms_norm(*seq, act.x.span(), weight, act.xn.span(), {d, n, 0, 0}, h.rms_eps);
      }
      experts_pending = false;
    };

    for (size_t il = 0; il < layers.size(); ++il) {
      const GpuLayer& L = layers[il];
      norm_x(L.attn_norm);
      if (L.wq.rows) {
        gpu::record_matmul(*seq, L.wq, act.xn.span(), act.q.span(), n);
        gpu::record_matmul(*seq, L.wkv_a, act.xn.span(), act.kv.span(), n);
      } else {
        const uint32_t qr = uint32_t(h.q_lora_rank);
        gpu::record_matmul(*seq, L.wq_a, act.xn.span(), act.qa.span(), n);
        gpu::record_matmul(*seq, L.wkv_a, act.xn.span(), act.kv.span(), n);
        gpu::record_rms_norm(*seq, act.qa.span(), L.q_a_norm, act.qa.span(), {qr, n, 0, 0}, h.rms_eps);
        gpu::record_matmul(*seq, L.wq_b, act.qa.span(), act.q.span(), n);
      }
      // kv_a norm, rope of k_pe and of every query head, cache store: one dispatch.
      gpu::record_kv_norm_rope_store(*seq, *cache, uint32_t(il), act.kv.span(), lora + rope, L.kv_a_norm, h.rms_eps,
                                     act.q.sub(uint64_t(nope) * 4, act.q.size() - uint64_t(nope) * 4),
                                     {n, nh, nh * qhd, qhd}, act.positions.span(), n, rp);
      gpu::record_mla_attention(*seq, shape, L.mla, act.q.span(), *cache, uint32_t(il), act.positions.span(), n,
                                scale, act.q_lat.span(), act.o_lat.span(), act.attn.span());
      gpu::record_matmul(*seq, L.wo, act.attn.span(), act.x.span(), n, residual);
      gpu::record_rms_norm(*seq, act.x.span(), L.ffn_norm, act.xn.span(), {d, n, 0, 0}, h.rms_eps);
      if (!L.moe) {
        record_swiglu(*seq, L.ffn_gate_up, L.ffn_down, n);
        continue;
      }
      gpu::RouterParams router;
      router.n_expert = uint32_t(h.n_expert);
      router.k = k;
      router.sigmoid_gate = h.gating == ExpertGating::Sigmoid;
      router.n_groups = uint32_t(h.n_expert_groups);
      router.top_groups = uint32_t(h.n_expert_groups_used);
      router.group_top2 = true;
      router.normalize = h.expert_weights_norm;
      router.routed_scale = h.expert_weights_scale;
      gpu::record_matmul(*seq, L.router, act.xn.span(), act.router_logits.span(), n);
      // Ids and weights go where their readers are: the GPU experts' device buffers, the CPU's
      // host-visible ones (copied there when both read them).
      const uint64_t kbytes = uint64_t(n) * k * 4;
      const bool ids_on_device = L.gpu_experts != nullptr;
      gpu::record_topk_router(*seq, act.router_logits.span(), L.probs_bias,
                              ids_on_device ? act.ids.span() : act.ids_host.span(),
                              ids_on_device ? act.weights.span() : act.weights_host.span(), n, router);
      if (!L.cpu_experts) {  // every routed expert here: the layer stays on the GPU
        if (L.sh_gate_up.rows) record_swiglu(*seq, L.sh_gate_up, L.sh_down, n);
        record_gpu_routed(*seq, L, n);
        continue;
      }
      if (ids_on_device) {
        seq->copy(act.ids.sub(0, kbytes), act.ids_host.sub(0, kbytes));
        seq->copy(act.weights.sub(0, kbytes), act.weights_host.sub(0, kbytes));
      }
      seq->copy(act.xn.sub(0, xbytes), act.xn_host.sub(0, xbytes));
      // The CPU starts here; the shared experts and the GPU's routed experts (into x) run meanwhile.
      if (L.sh_gate_up.rows || L.gpu_experts) {
        segs.back().shared = std::make_unique<gpu::CommandSequence>(*dev, opt.profile);
        if (L.sh_gate_up.rows) record_swiglu(*segs.back().shared, L.sh_gate_up, L.sh_down, n);
        record_gpu_routed(*segs.back().shared, L, n);
      }
      seq = begin_segment();
      experts_pending = true;
    }
    norm_x(output_norm);
    gpu::record_matmul(*seq, output, act.xn.span(), act.logits.span(), n);
    if (n <= kHostLogitTokens) {
      const uint64_t bytes = uint64_t(n) * uint64_t(h.n_vocab) * 4;
      seq->copy(act.logits.sub(0, bytes), act.logits_host.sub(0, bytes));
    }
    for (auto& s : segs) {
      s.main->finish();
      if (s.shared) s.shared->finish();
    }
    return segs;
  }

  // x += the layer's GPU-resident routed experts of xn (nothing when it has none).
  void record_gpu_routed(gpu::CommandSequence& seq, const GpuLayer& L, uint32_t n) {
    if (!L.gpu_experts) return;
    gpu::record_gpu_experts(seq, *L.gpu_experts, act.xn.span(), act.ids.span(), act.weights.span(), n,
                            uint32_t(w.hp.n_expert_used), act.x.span(),
                            {act.expert_route.span(), act.expert_hidden.span(), act.expert_parts.span()});
  }

  // x += down(silu(gate xn) * up xn); gate_up holds gate's rows then up's.
  void record_swiglu(gpu::CommandSequence& seq, const GpuWeight& gate_up, const GpuWeight& down, uint32_t n) {
    const uint32_t ff = gate_up.rows / 2;
    gpu::record_matmul(seq, gate_up, act.xn.span(), act.ffn_gu.span(), n);
    gpu::record_silu_mul(seq, act.ffn_gu.span(), act.ffn_gu.sub(uint64_t(ff) * 4, act.ffn_gu.size() - uint64_t(ff) * 4),
                         act.ffn_h.span(), {ff, n, 2 * ff, 2 * ff, ff});
    gpu::MatMulLayout residual;
    residual.accumulate = true;
    gpu::record_matmul(seq, down, act.ffn_h.span(), act.x.span(), n, residual);
  }

  void run_batch(std::span<const int32_t> tokens, float* logits_out) {
    using clock = std::chrono::steady_clock;
    auto ms_since = [](clock::time_point t0) {
      return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    };
    const auto start = clock::now();
    const Deepseek2Hparams& h = w.hp;
    const uint32_t n = uint32_t(tokens.size());
    const int64_t d = h.n_embd;
    // Embeddings on the host: one row per token, straight from the mmapped table.
    float* x = static_cast<float*>(act.x_host.mapped());
    for (uint32_t t = 0; t < n; ++t) reference_row(w.token_embd, tokens[t], x + int64_t(t) * d);
    int32_t* pos = static_cast<int32_t*>(act.positions_host.mapped());
    for (uint32_t t = 0; t < n; ++t) pos[t] = int32_t(n_past + t);

    auto it = recorded.find(n);
    if (it == recorded.end()) {
      if (recorded.size() >= 4) recorded.erase(recorded.begin());  // prefill sizes vary: keep a few
      it = recorded.emplace(n, record(n)).first;
    }
    auto& segs = it->second;
    HybridStepTimes t;
    for (size_t s = 0; s < segs.size(); ++s) {
      // Queued back to back: the shared experts and the next segment start without a host round trip.
      segs[s].main->submit();
      t.submits++;
      t.dispatches += uint32_t(segs[s].main->dispatch_count());
      if (segs[s].shared) {
        segs[s].shared->submit();
        t.submits++;
        t.dispatches += uint32_t(segs[s].shared->dispatch_count());
      }
      const auto w0 = clock::now();
      segs[s].main->wait();
      t.gpu_wait_ms += ms_since(w0);
      if (s < cpu_moe_layers.size()) {
        const auto e0 = clock::now();
        experts->forward(cpu_moe_layers[s], static_cast<const float*>(act.xn_host.mapped()), n,
                         static_cast<const int32_t*>(act.ids_host.mapped()),
                         static_cast<const float*>(act.weights_host.mapped()), h.n_expert_used,
                         static_cast<float*>(act.expert_host.mapped()));
        t.experts_ms += ms_since(e0);
      }
    }
    const auto w1 = clock::now();
    for (auto& seg : segs)
      if (seg.shared) seg.shared->wait();  // done already (the last segment ran after them)
    t.gpu_wait_ms += ms_since(w1);
    last_timings.clear();
    if (opt.profile)
      for (auto& seg : segs) {
        for (auto& k : seg.main->timings()) last_timings.push_back(k);
        if (seg.shared)
          for (auto& k : seg.shared->timings()) last_timings.push_back(k);
      }
    const uint64_t bytes = uint64_t(n) * uint64_t(h.n_vocab) * 4;
    if (n <= kHostLogitTokens)
      std::memcpy(logits_out, act.logits_host.mapped(), bytes);
    else
      dev->download(act.logits.sub(0, bytes), logits_out, bytes);
    n_past += n;
    t.wall_ms = ms_since(start);
    t.host_ms = t.wall_ms - t.gpu_wait_ms - t.experts_ms;
    times = t;
  }
};

Deepseek2Hybrid::Deepseek2Hybrid(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts,
                                 const Deepseek2HybridOptions& options)
    : impl_(std::make_unique<Impl>(w, std::move(experts), options)) {
  if (options.max_batch == 0 || options.max_context == 0) fail("max_batch and max_context must be positive");
  if (options.gpu_experts.size() > size_t(w.hp.n_layer))
    fail("GPU experts given for ", options.gpu_experts.size(), " layers; the model has ", w.hp.n_layer);
  for (size_t il = 0; il < options.gpu_experts.size(); ++il)
    if (!options.gpu_experts[il].empty() && !w.layers[il].is_moe())
      fail("GPU experts given for layer ", il, ", which has no routed experts");
  impl_->dev = gpu::GpuDevice::open(options.gpu_index);
  impl_->upload_weights();
  if (!impl_->experts && !impl_->cpu_moe_layers.empty())
    fail("the hybrid deepseek2 pass needs a RoutedExperts implementation for the experts not on the GPU");
  impl_->cache = std::make_unique<gpu::LatentKvCache>(*impl_->dev, uint32_t(w.hp.n_layer), options.max_context,
                                                      uint32_t(w.hp.kv_lora_rank), uint32_t(w.hp.qk_rope),
                                                      options.kv_type);
  impl_->allocate_activations();
}

Deepseek2Hybrid::~Deepseek2Hybrid() = default;

int64_t Deepseek2Hybrid::n_vocab() const { return impl_->w.hp.n_vocab; }
int64_t Deepseek2Hybrid::n_past() const { return impl_->n_past; }
void Deepseek2Hybrid::reset() { impl_->n_past = 0; }
void Deepseek2Hybrid::seek(int64_t n_past) {
  if (n_past < 0 || n_past >= int64_t(impl_->opt.max_context))
    fail("seek to ", n_past, ": outside the KV cache of ", impl_->opt.max_context, " rows");
  impl_->n_past = n_past;
}

void Deepseek2Hybrid::forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
  const Deepseek2Hparams& h = impl_->w.hp;
  for (int32_t id : tokens)
    if (id < 0 || id >= h.n_vocab) fail("token id ", id, " is outside the vocabulary of ", h.n_vocab);
  if (impl_->n_past + int64_t(tokens.size()) > int64_t(impl_->opt.max_context))
    fail("context full: ", impl_->n_past, " + ", tokens.size(), " tokens exceed the KV cache of ",
         impl_->opt.max_context, " (raise --ctx)");
  logits.resize(tokens.size() * size_t(h.n_vocab));
  for (size_t i = 0; i < tokens.size(); i += impl_->opt.max_batch) {
    const size_t n = std::min<size_t>(impl_->opt.max_batch, tokens.size() - i);
    impl_->run_batch(tokens.subspan(i, n), logits.data() + i * size_t(h.n_vocab));
  }
}

std::string Deepseek2Hybrid::device_name() const { return impl_->dev->info().name; }
uint64_t Deepseek2Hybrid::device_bytes() const { return impl_->dev->device_bytes_in_use(); }

double Deepseek2Hybrid::last_gpu_milliseconds() const {
  double total = 0;
  for (const auto& t : impl_->last_timings) total += t.milliseconds;
  return total;
}

const HybridStepTimes& Deepseek2Hybrid::last_step_times() const { return impl_->times; }

void Deepseek2Hybrid::set_profile(bool on) {
  if (impl_->opt.profile == on) return;
  impl_->opt.profile = on;
  impl_->recorded.clear();
  impl_->last_timings.clear();
}

std::string Deepseek2Hybrid::profile_report() const {
  std::map<std::string, std::pair<double, int>> by_label;
  double total = 0;
  for (const auto& t : impl_->last_timings) {
    auto& e = by_label[t.label];
    e.first += t.milliseconds;
    e.second++;
    total += t.milliseconds;
  }
  std::ostringstream s;
  s << "GPU time " << total << " ms in " << impl_->last_timings.size() << " dispatches\n";
  for (const auto& [label, e] : by_label) s << "  " << label << ": " << e.first << " ms (" << e.second << ")\n";
  return s.str();
}

}  // namespace tandem
