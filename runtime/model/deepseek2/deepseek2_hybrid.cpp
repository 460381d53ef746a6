#include "runtime/model/deepseek2/deepseek2_hybrid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include <sys/mman.h>
#include <unistd.h>

#include "runtime/core/error.h"
#include "runtime/core/half.h"
#include "runtime/cpu/row_ops.h"
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
#include "runtime/model/deepseek2/deepseek2_cpu.h"
#include "runtime/model/reference_ops.h"
#include "runtime/model/sequence_chunks.h"
#include "runtime/quant/dequantize.h"

namespace tandem {

using gpu::GpuBuffer;
using gpu::GpuSpan;
using gpu::GpuWeight;
using sched::ActivationId;
using sched::Step;

namespace {

constexpr int kCpu = Deepseek2HybridOptions::kOnCpu;

struct GpuLayer {
  int attn_dev = 0, ffn_dev = 0;  // a GPU index or kCpu
  uint32_t cache_slot = 0;        // the layer's rows in its GPU's latent cache
  GpuSpan attn_norm, q_a_norm, kv_a_norm, ffn_norm, probs_bias;
  GpuWeight wq, wq_a, wq_b, wkv_a, wo;
  gpu::MlaWeights mla;
  GpuWeight ffn_gate_up, ffn_down;  // gate rows then up rows: one matmul for both
  GpuWeight router;
  GpuWeight sh_gate_up, sh_down;
  bool moe = false;
  const gpu::GpuExpertLayer* gpu_experts = nullptr;  // routed experts resident here (null: none)
  bool cpu_experts = true;  // some routed experts run on the CPU engine
};

// Batches up to this many tokens get their logits back through host-visible memory inside the
// last segment (decode: no separate download); longer ones are downloaded.
constexpr uint32_t kHostLogitTokens = 8;

// The program's activations (scheduler ids).
struct Acts {
  ActivationId x, xn, positions, expert_out, ids, weights, ids_host, weights_host, logits;
  ActivationId q, qa, kv, q_lat, o_lat, attn, ffn_gu, ffn_h, router_logits;
  ActivationId expert_route, expert_hidden, expert_parts;
  ActivationId last_rows;  // each chunk's last row of xn (a multi-sequence pass's head input)
};

// Rows [row0, row0 + n) of a pass: tokens of one sequence slot.
struct Chunk {
  int slot = 0;
  uint32_t row0 = 0, n = 0;
};

}  // namespace

struct Deepseek2Hybrid::Impl {
  const Deepseek2Weights& w;
  std::shared_ptr<RoutedExperts> experts;
  Deepseek2HybridOptions opt;
  std::unique_ptr<sched::StepScheduler> sched;  // the devices: destroyed after everything on them
  gpu::GpuDevice* dev = nullptr;                // the device weights are being uploaded to
  std::vector<GpuBuffer> storage;               // every weight upload
  std::vector<GpuLayer> layers;
  int out_dev = 0;
  GpuSpan output_norm;
  GpuWeight output;
  // Per GPU, its layers' rows for every slot: slot s's copy of a layer is cache layer
  // s * layers_on[g] + cache_slot.
  std::map<int, std::unique_ptr<gpu::LatentKvCache>> caches;
  std::map<int, uint32_t> layers_on;                          // attention layers per GPU
  std::unique_ptr<Deepseek2Cpu> cpu;                          // the CPU layer parts (null: none)
  std::vector<cpu::LatentKvCacheCpu> cpu_caches;              // per slot (CPU attention layers)
  std::vector<float> cpu_y, cpu_xn, cpu_last;  // CPU parts' scratch
  Acts act{};
  std::vector<int64_t> n_past;      // per slot
  std::span<const int32_t> tokens;  // the batch run() is computing (every chunk's rows in order)
  std::vector<Chunk> batch;         // its chunks
  bool last_rows_only = false;      // the head computes each chunk's last row only
  uint32_t ff_width = 0;            // widest FFN on a GPU (dense or shared experts)
  std::vector<std::unique_ptr<gpu::GpuExpertLayer>> gpu_expert_layers;
  uint32_t gpu_expert_ffn = 0;  // widest GPU-resident expert (scratch sizing); 0: none

  Impl(const Deepseek2Weights& weights, std::shared_ptr<RoutedExperts> ex, const Deepseek2HybridOptions& o)
      : w(weights), experts(std::move(ex)), opt(o) {}

  // The whole pages of [p, p + bytes) leave this process's resident set (see
  // release_mapped_uploads); the tied output head is the host's embedding table, kept.
  void release(const void* p, uint64_t bytes) const {
    if (!opt.release_mapped_uploads || p == nullptr || p == w.token_embd.data) return;
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t first = (uintptr_t(p) + page - 1) & ~(page - 1);
    const uintptr_t last = (uintptr_t(p) + uintptr_t(bytes)) & ~(page - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
  }
  void release(const WeightMatrix& m) const { release(m.data, uint64_t(m.rows) * m.row_bytes); }

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
    GpuWeight g = upload_matrix_data(m);
    release(m);
    return g;
  }
  GpuWeight upload_matrix_data(const WeightMatrix& m) {
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
    GpuWeight g = upload_gate_up_data(gate, up);
    release(gate);
    release(up);
    return g;
  }
  GpuWeight upload_gate_up_data(const WeightMatrix& gate, const WeightMatrix& up) {
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
    release(kv_b);
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
      release(gate.row(e * ffn), uint64_t(ffn) * gate.row_bytes);
      release(up.row(e * ffn), uint64_t(ffn) * up.row_bytes);
      release(down.row(e * hidden), uint64_t(hidden) * down.row_bytes);
      uploaded(uint64_t(ffn) * (gate.row_bytes + up.row_bytes) + uint64_t(hidden) * down.row_bytes);
    }
    L.gpu_experts = layer.get();
    gpu_expert_ffn = std::max(gpu_expert_ffn, uint32_t(ffn));
    gpu_expert_layers.push_back(std::move(layer));
  }

  // Which device runs each part; opens the GPUs among them.
  void place() {
    const Deepseek2Hparams& h = w.hp;
    const int home = int(opt.gpu_index);
    auto pick = [&](const std::vector<int>& v, int64_t il) { return size_t(il) < v.size() ? v[size_t(il)] : home; };
    std::set<uint32_t> gpus;
    std::map<int, uint32_t> slots;
    layers.resize(size_t(h.n_layer));
    for (int64_t il = 0; il < h.n_layer; ++il) {
      GpuLayer& L = layers[size_t(il)];
      L.attn_dev = pick(opt.attention_device, il);
      L.ffn_dev = pick(opt.ffn_device, il);
      for (int d : {L.attn_dev, L.ffn_dev}) {
        if (d < kCpu) fail("layer ", il, ": device ", d, " is neither a GPU index nor the CPU");
        if (d >= 0) gpus.insert(uint32_t(d));
      }
      if (L.attn_dev >= 0) L.cache_slot = slots[L.attn_dev]++;
      const bool has_gpu_experts =
          size_t(il) < opt.gpu_experts.size() &&
          std::any_of(opt.gpu_experts[size_t(il)].begin(), opt.gpu_experts[size_t(il)].end(), [](uint8_t m) { return m != 0; });
      if (has_gpu_experts && L.ffn_dev == kCpu)
        fail("layer ", il, ": routed experts on the GPU need the layer's router on that GPU, not on the CPU");
    }
    out_dev = opt.output_device == -2 ? home : opt.output_device;
    if (out_dev < kCpu) fail("the output head's device ", out_dev, " is neither a GPU index nor the CPU");
    if (out_dev >= 0) gpus.insert(uint32_t(out_dev));
    sched::SchedulerOptions so;
    so.max_tokens = opt.max_batch;
    so.profile = opt.profile;
    // Multi-sequence passes record per layout: room for a few prefill layouts and the decode one.
    if (opt.sequences > 1) so.recorded_sizes = std::max(so.recorded_sizes, 2 * opt.sequences + 2);
    sched = std::make_unique<sched::StepScheduler>(std::vector<uint32_t>(gpus.begin(), gpus.end()), experts, so);
    layers_on = slots;
    for (const auto& [g, n] : slots)
      caches[g] = std::make_unique<gpu::LatentKvCache>(sched->device(g), n * opt.sequences, opt.max_context,
                                                       uint32_t(h.kv_lora_rank), uint32_t(h.qk_rope), opt.kv_type);
    const bool any_cpu = out_dev == kCpu || std::any_of(layers.begin(), layers.end(), [](const GpuLayer& L) {
                           return L.attn_dev == kCpu || L.ffn_dev == kCpu;
                         });
    if (any_cpu) {
      Deepseek2CpuOptions co;
      co.threads = opt.cpu_threads;
      cpu = std::make_unique<Deepseek2Cpu>(w, experts, co);
      for (uint32_t q = 0; q < opt.sequences; ++q) cpu_caches.push_back(cpu->make_cache());
    }
  }

  void upload_weights() {
    const Deepseek2Hparams& h = w.hp;
    for (int64_t il = 0; il < h.n_layer; ++il) {
      const Deepseek2Layer& s = w.layers[size_t(il)];
      GpuLayer& L = layers[size_t(il)];
      L.moe = s.is_moe();
      if (L.attn_dev >= 0) {
        dev = &sched->device(L.attn_dev);
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
      }
      if (L.ffn_dev < 0) continue;
      dev = &sched->device(L.ffn_dev);
      L.ffn_norm = upload_vector(s.ffn_norm, h.n_embd, "ffn_norm");
      if (L.moe) {
        L.router = upload_matrix(s.gate_inp);
        if (s.exp_probs_b) L.probs_bias = upload_vector(s.exp_probs_b, h.n_expert, "exp_probs_b");
        if (!s.gate_shexp.empty()) {
          L.sh_gate_up = upload_gate_up(s.gate_shexp, s.up_shexp);
          L.sh_down = upload_matrix(s.down_shexp);
          ff_width = std::max(ff_width, uint32_t(s.gate_shexp.rows));
        }
        upload_routed_experts(il, s, L);
      } else {
        L.ffn_gate_up = upload_gate_up(s.ffn_gate, s.ffn_up);
        L.ffn_down = upload_matrix(s.ffn_down);
        ff_width = std::max(ff_width, uint32_t(s.ffn_gate.rows));
      }
    }
    if (out_dev >= 0) {
      dev = &sched->device(out_dev);
      output_norm = upload_vector(w.output_norm, h.n_embd, "output_norm");
      output = upload_matrix(w.output);
    }
    dev = nullptr;
  }

  void declare_activations() {
    const Deepseek2Hparams& h = w.hp;
    const uint64_t B = opt.max_batch, f = 4;
    auto decl = [&](const char* name, uint64_t floats_per_token, bool host_visible = false, uint32_t mirror = 0) {
      sched::ActivationSpec s;
      s.name = name;
      s.bytes_per_token = std::max<uint64_t>(floats_per_token, 1) * f;
      s.bytes = B * s.bytes_per_token;
      s.host_visible = host_visible;
      s.mirror_tokens = mirror;
      return sched->declare(s);
    };
    const uint64_t d = uint64_t(h.n_embd), nh = uint64_t(h.n_head), L = uint64_t(h.kv_lora_rank);
    const uint64_t k = uint64_t(std::max<int64_t>(h.n_expert_used, 1));
    act.x = decl("activations x", d);
    act.xn = decl("activations xn", d);
    act.positions = decl("positions", 1);
    act.expert_out = decl("routed expert output", d);
    act.ids = decl("expert ids", k);
    act.weights = decl("expert weights", k);
    // The router writes these straight into host-visible memory when only the CPU reads them.
    act.ids_host = decl("expert ids (host)", k, true);
    act.weights_host = decl("expert weights (host)", k, true);
    act.logits = decl("logits", uint64_t(h.n_vocab), false, kHostLogitTokens);
    act.q = decl("activations q", nh * uint64_t(h.q_head_dim()));
    act.qa = decl("activations q_a", uint64_t(std::max<int64_t>(h.q_lora_rank, 1)));
    act.kv = decl("activations kv", L + uint64_t(h.qk_rope));
    act.q_lat = decl("activations q_lat", nh * L);
    act.o_lat = decl("activations o_lat", nh * L);
    act.attn = decl("activations attention", nh * uint64_t(h.v_head));
    act.ffn_gu = decl("activations ffn gate+up", 2 * uint64_t(ff_width));
    act.ffn_h = decl("activations ffn hidden", ff_width);
    act.router_logits = decl("router logits", uint64_t(std::max<int64_t>(h.n_expert, 1)));
    act.last_rows = decl("activations xn (chunks' last rows)", d);
    if (gpu_expert_ffn) {
      const auto sb = gpu::gpu_expert_scratch_bytes(uint32_t(h.n_expert), uint32_t(d), gpu_expert_ffn,
                                                    uint32_t(B * k));
      auto scratch = [&](const char* name, uint64_t bytes) {
        sched::ActivationSpec s;
        s.name = name;
        s.bytes = bytes;
        return sched->declare(s);
      };
      act.expert_route = scratch("GPU experts routing", sb.route);
      act.expert_hidden = scratch("GPU experts hidden", sb.hidden);
      act.expert_parts = scratch("GPU experts outputs", sb.parts);
    }
  }

  GpuSpan S(int g, ActivationId a) { return sched->span(g, a); }

  gpu::RopeParams rope_params() const {
    const Deepseek2Hparams& h = w.hp;
    gpu::RopeParams rp;
    rp.dim = uint32_t(h.qk_rope);
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
    return rp;
  }

  // xn = norm(x) on GPU g; with `pending`, x += expert_out first (the same pass).
  void record_norm_x(gpu::CommandSequence& seq, int g, const GpuSpan& weight, bool pending, uint32_t n) {
    const uint32_t d = uint32_t(w.hp.n_embd);
    if (pending)
      gpu::record_add_rms_norm(seq, S(g, act.x), S(g, act.expert_out), weight, S(g, act.xn), {d, n, 0, 0},
                               w.hp.rms_eps);
    else
      gpu::record_rms_norm(seq, S(g, act.x), weight, S(g, act.xn), {d, n, 0, 0}, w.hp.rms_eps);
  }

  void record_attention(gpu::CommandSequence& seq, int64_t il, bool pending, uint32_t n) {
    const Deepseek2Hparams& h = w.hp;
    const GpuLayer& L = layers[size_t(il)];
    const int g = L.attn_dev;
    const uint32_t nh = uint32_t(h.n_head), qhd = uint32_t(h.q_head_dim());
    const uint32_t lora = uint32_t(h.kv_lora_rank), rope = uint32_t(h.qk_rope), nope = uint32_t(h.qk_nope);
    const GpuSpan x = S(g, act.x), xn = S(g, act.xn), q = S(g, act.q), kv = S(g, act.kv), pos = S(g, act.positions);
    record_norm_x(seq, g, L.attn_norm, pending, n);
    if (L.wq.rows) {
      gpu::record_matmul(seq, L.wq, xn, q, n);
      gpu::record_matmul(seq, L.wkv_a, xn, kv, n);
    } else {
      const uint32_t qr = uint32_t(h.q_lora_rank);
      const GpuSpan qa = S(g, act.qa);
      gpu::record_matmul(seq, L.wq_a, xn, qa, n);
      gpu::record_matmul(seq, L.wkv_a, xn, kv, n);
      gpu::record_rms_norm(seq, qa, L.q_a_norm, qa, {qr, n, 0, 0}, h.rms_eps);
      gpu::record_matmul(seq, L.wq_b, qa, q, n);
    }
    const gpu::LatentKvCache& cache = *caches.at(g);
    const gpu::MlaShape shape{nh, lora, nope, rope, uint32_t(h.v_head)};
    const GpuSpan q_lat = S(g, act.q_lat), o_lat = S(g, act.o_lat), attn = S(g, act.attn);
    // Per chunk, over its slot's cache rows (one chunk: the whole batch, slot 0).
    for (const Chunk& c : batch) {
      const uint32_t layer = uint32_t(c.slot) * layers_on.at(g) + L.cache_slot;
      const uint64_t r0 = c.row0;
      const GpuSpan qc = q.sub(r0 * nh * qhd * 4, uint64_t(c.n) * nh * qhd * 4);
      const GpuSpan pc = pos.sub(r0 * 4, uint64_t(c.n) * 4);
      // kv_a norm, rope of k_pe and of every query head, cache store: one dispatch.
      gpu::record_kv_norm_rope_store(seq, cache, layer, kv.sub(r0 * (lora + rope) * 4, uint64_t(c.n) * (lora + rope) * 4),
                                     lora + rope, L.kv_a_norm, h.rms_eps,
                                     qc.sub(uint64_t(nope) * 4, qc.size - uint64_t(nope) * 4), {c.n, nh, nh * qhd, qhd},
                                     pc, c.n, rope_params());
      // Scratch rows of this chunk's own (chunks are consecutive row ranges of the batch).
      gpu::record_mla_attention(seq, shape, L.mla, qc, cache, layer, pc, c.n, h.attention_scale(),
                                q_lat.sub(r0 * nh * lora * 4, q_lat.size - r0 * nh * lora * 4),
                                o_lat.sub(r0 * nh * lora * 4, o_lat.size - r0 * nh * lora * 4),
                                attn.sub(r0 * nh * uint32_t(h.v_head) * 4, uint64_t(c.n) * nh * uint32_t(h.v_head) * 4));
    }
    gpu::MatMulLayout residual;  // output projections add straight into x
    residual.accumulate = true;
    gpu::record_matmul(seq, L.wo, S(g, act.attn), x, n, residual);
  }

  // x += the layer's GPU-resident routed experts of xn (nothing when it has none).
  void record_gpu_routed(gpu::CommandSequence& seq, const GpuLayer& L, uint32_t n) {
    if (!L.gpu_experts) return;
    const int g = L.ffn_dev;
    gpu::record_gpu_experts(seq, *L.gpu_experts, S(g, act.xn), S(g, act.ids), S(g, act.weights), n,
                            uint32_t(w.hp.n_expert_used), S(g, act.x),
                            {S(g, act.expert_route), S(g, act.expert_hidden), S(g, act.expert_parts)});
  }

  // x += down(silu(gate xn) * up xn) on GPU g; gate_up holds gate's rows then up's.
  void record_swiglu(gpu::CommandSequence& seq, int g, const GpuWeight& gate_up, const GpuWeight& down, uint32_t n) {
    const uint32_t ff = gate_up.rows / 2;
    const GpuSpan gu = S(g, act.ffn_gu);
    gpu::record_matmul(seq, gate_up, S(g, act.xn), gu, n);
    gpu::record_silu_mul(seq, gu, gu.sub(uint64_t(ff) * 4, gu.size - uint64_t(ff) * 4), S(g, act.ffn_h),
                         {ff, n, 2 * ff, 2 * ff, ff});
    gpu::MatMulLayout residual;
    residual.accumulate = true;
    gpu::record_matmul(seq, down, S(g, act.ffn_h), S(g, act.x), n, residual);
  }

  // ffn_norm, router matmul and top-k on the layer's GPU; ids and weights go where their readers
  // are (the GPU experts' device buffers, else host-visible memory for the CPU).
  void record_router(gpu::CommandSequence& seq, const GpuLayer& L, uint32_t n) {
    const Deepseek2Hparams& h = w.hp;
    const int g = L.ffn_dev;
    gpu::record_rms_norm(seq, S(g, act.x), L.ffn_norm, S(g, act.xn), {uint32_t(h.n_embd), n, 0, 0}, h.rms_eps);
    gpu::RouterParams router;
    router.n_expert = uint32_t(h.n_expert);
    router.k = uint32_t(h.n_expert_used);
    router.sigmoid_gate = h.gating == ExpertGating::Sigmoid;
    router.n_groups = uint32_t(h.n_expert_groups);
    router.top_groups = uint32_t(h.n_expert_groups_used);
    router.group_top2 = true;
    router.normalize = h.expert_weights_norm;
    router.routed_scale = h.expert_weights_scale;
    gpu::record_matmul(seq, L.router, S(g, act.xn), S(g, act.router_logits), n);
    const bool on_device = L.gpu_experts != nullptr;
    gpu::record_topk_router(seq, S(g, act.router_logits), L.probs_bias, S(g, on_device ? act.ids : act.ids_host),
                            S(g, on_device ? act.weights : act.weights_host), n, router);
  }

  // The CPU parts: x (+ expert_out when pending) in place, through Deepseek2Cpu's kernels.
  void cpu_norm(const float* x, const float* weight, uint32_t n, float* out) {
    const int64_t d = w.hp.n_embd;
    for (uint32_t t = 0; t < n; ++t) cpu::rms_norm(x + t * d, weight, d, w.hp.rms_eps, out + t * d);
  }
  float* cpu_scratch(std::vector<float>& v, uint32_t n) {
    v.resize(size_t(n) * size_t(w.hp.n_embd));
    return v.data();
  }

  // The deepseek2 layer program: steps the scheduler runs where each part was placed.
  sched::Program program() {
    const Deepseek2Hparams& h = w.hp;
    sched::Program p;
    auto gpu_step = [&](const std::string& label, int g, std::vector<ActivationId> reads,
                        std::vector<ActivationId> writes, sched::RecordFn fn) {
      Step s;
      s.kind = Step::Kind::Gpu;
      s.label = label;
      s.device = g;
      s.reads = std::move(reads);
      s.writes = std::move(writes);
      s.record = std::move(fn);
      p.steps.push_back(std::move(s));
    };
    auto cpu_step = [&](const std::string& label, std::vector<ActivationId> reads, std::vector<ActivationId> writes,
                        sched::CpuFn fn) {
      Step s;
      s.kind = Step::Kind::Cpu;
      s.label = label;
      s.reads = std::move(reads);
      s.writes = std::move(writes);
      s.run = std::move(fn);
      p.steps.push_back(std::move(s));
    };
    {  // embeddings on the host, one row per token straight from the mmapped table
      Step s;
      s.kind = Step::Kind::Cpu;
      s.label = "embeddings";
      s.host_time = true;
      s.writes = {act.x, act.positions};
      s.run = [this](const sched::HostBuffers& hb, uint32_t n) {
        float* x = hb.f32(act.x);
        for (uint32_t t = 0; t < n; ++t) reference_row(w.token_embd, tokens[t], x + int64_t(t) * w.hp.n_embd);
        int32_t* pos = hb.i32(act.positions);
        for (const Chunk& c : batch)
          for (uint32_t t = 0; t < c.n; ++t) pos[c.row0 + t] = int32_t(n_past[size_t(c.slot)] + t);
      };
      p.steps.push_back(std::move(s));
    }
    const int64_t d = h.n_embd;
    bool pending = false;  // expert_out still to be added to x
    auto with_pending = [&](std::vector<ActivationId> v) {
      if (pending) v.push_back(act.expert_out);
      return v;
    };
    for (int64_t il = 0; il < h.n_layer; ++il) {
      const GpuLayer& L = layers[size_t(il)];
      const std::string name = "layer " + std::to_string(il);
      if (L.attn_dev >= 0) {
        gpu_step(name + " attention", L.attn_dev, with_pending({act.x, act.positions}), {act.x},
                 [this, il, pending](gpu::CommandSequence& seq, uint32_t n) { record_attention(seq, il, pending, n); });
      } else {
        cpu_step(name + " attention (cpu)", with_pending({act.x}), {act.x},
                 [this, il, pending, d](const sched::HostBuffers& hb, uint32_t n) {
                   float* x = hb.f32(act.x);
                   if (pending) cpu::add_inplace(x, hb.f32(act.expert_out), int64_t(n) * d);
                   float* xn = cpu_scratch(cpu_xn, n);
                   float* y = cpu_scratch(cpu_y, n);
                   cpu_norm(x, w.layers[size_t(il)].attn_norm, n, xn);
                   std::vector<Deepseek2Cpu::Segment> segs;
                   for (const Chunk& c : batch) segs.push_back({&cpu_caches[size_t(c.slot)], c.row0, c.n});
                   cpu->attention_rows(il, xn, n, segs, y);
                   cpu::add_inplace(x, y, int64_t(n) * d);
                 });
      }
      pending = false;
      if (L.ffn_dev < 0) {
        cpu_step(name + " ffn (cpu)", {act.x}, {act.x}, [this, il, d](const sched::HostBuffers& hb, uint32_t n) {
          float* x = hb.f32(act.x);
          float* xn = cpu_scratch(cpu_xn, n);
          float* y = cpu_scratch(cpu_y, n);
          cpu_norm(x, w.layers[size_t(il)].ffn_norm, n, xn);
          cpu->ffn(il, xn, n, y);
          cpu::add_inplace(x, y, int64_t(n) * d);
        });
        continue;
      }
      const int g = L.ffn_dev;
      if (!L.moe) {
        gpu_step(name + " dense ffn", g, {act.x}, {act.x}, [this, g, il](gpu::CommandSequence& seq, uint32_t n) {
          const GpuLayer& l = layers[size_t(il)];
          gpu::record_rms_norm(seq, S(g, act.x), l.ffn_norm, S(g, act.xn), {uint32_t(w.hp.n_embd), n, 0, 0},
                               w.hp.rms_eps);
          record_swiglu(seq, g, l.ffn_gate_up, l.ffn_down, n);
        });
        continue;
      }
      const bool ids_on_device = L.gpu_experts != nullptr;
      const ActivationId ids = ids_on_device ? act.ids : act.ids_host;
      const ActivationId weights = ids_on_device ? act.weights : act.weights_host;
      auto shared_and_gpu_experts = [this, il, g](gpu::CommandSequence& seq, uint32_t n) {
        const GpuLayer& l = layers[size_t(il)];
        if (l.sh_gate_up.rows) record_swiglu(seq, g, l.sh_gate_up, l.sh_down, n);
        record_gpu_routed(seq, l, n);
      };
      if (!L.cpu_experts) {  // every routed expert on the GPU: the layer stays there
        gpu_step(name + " moe (gpu)", g, {act.x}, {act.x, act.xn, ids, weights},
                 [this, il, shared_and_gpu_experts](gpu::CommandSequence& seq, uint32_t n) {
                   record_router(seq, layers[size_t(il)], n);
                   shared_and_gpu_experts(seq, n);
                 });
        continue;
      }
      gpu_step(name + " router", g, {act.x}, {act.xn, ids, weights},
               [this, il](gpu::CommandSequence& seq, uint32_t n) { record_router(seq, layers[size_t(il)], n); });
      Step s;
      s.kind = Step::Kind::RoutedExperts;
      s.label = name + " routed experts";
      s.device = g;
      s.layer = il;
      s.k_used = h.n_expert_used;
      s.x = act.xn;
      s.ids = ids;
      s.weights = weights;
      s.out = act.expert_out;
      if (L.sh_gate_up.rows || L.gpu_experts) {
        s.overlap = shared_and_gpu_experts;
        s.overlap_reads = {act.xn};
        if (ids_on_device) s.overlap_reads.insert(s.overlap_reads.end(), {act.ids, act.weights});
        s.overlap_writes = {act.x};
      }
      p.steps.push_back(std::move(s));
      pending = true;
    }
    if (out_dev >= 0) {
      const int g = out_dev;
      gpu_step("output head", g, with_pending({act.x}), {act.logits},
               [this, g, pending](gpu::CommandSequence& seq, uint32_t n) {
                 record_norm_x(seq, g, output_norm, pending, n);
                 GpuSpan in = S(g, act.xn);
                 uint32_t rows = n;
                 if (last_rows_only && batch.size() < n) {  // gather each chunk's last row
                   const uint64_t row = uint64_t(w.hp.n_embd) * 4;
                   const GpuSpan xn = S(g, act.xn), last = S(g, act.last_rows);
                   for (size_t i = 0; i < batch.size(); ++i)
                     seq.copy(xn.sub((batch[i].row0 + batch[i].n - 1) * row, row), last.sub(i * row, row));
                   in = last;
                   rows = uint32_t(batch.size());
                 } else if (last_rows_only) {
                   rows = uint32_t(batch.size());  // one row per chunk already
                 }
                 gpu::record_matmul(seq, output, in, S(g, act.logits), rows);
               });
    } else {
      cpu_step("output head (cpu)", with_pending({act.x}), {act.logits},
               [this, pending, d](const sched::HostBuffers& hb, uint32_t n) {
                 float* x = hb.f32(act.x);
                 if (pending) cpu::add_inplace(x, hb.f32(act.expert_out), int64_t(n) * d);
                 float* xn = cpu_scratch(cpu_xn, n);
                 uint32_t rows = n;
                 if (last_rows_only) {  // each chunk's last row only
                   rows = uint32_t(batch.size());
                   float* last = cpu_scratch(cpu_last, rows);
                   for (uint32_t i = 0; i < rows; ++i)
                     std::copy_n(x + int64_t(batch[i].row0 + batch[i].n - 1) * d, d, last + int64_t(i) * d);
                   x = last;
                 }
                 cpu_norm(x, w.output_norm, rows, xn);
                 cpu->head(xn, rows, hb.f32(act.logits));
               });
    }
    p.result = act.logits;
    return p;
  }
};

Deepseek2Hybrid::Deepseek2Hybrid(const Deepseek2Weights& w, std::shared_ptr<RoutedExperts> experts,
                                 const Deepseek2HybridOptions& options)
    : impl_(std::make_unique<Impl>(w, std::move(experts), options)) {
  if (options.max_batch == 0 || options.max_context == 0) fail("max_batch and max_context must be positive");
  if (options.sequences == 0) fail("the hybrid pass needs at least one sequence slot");
  impl_->n_past.assign(options.sequences, 0);
  if (options.gpu_experts.size() > size_t(w.hp.n_layer))
    fail("GPU experts given for ", options.gpu_experts.size(), " layers; the model has ", w.hp.n_layer);
  for (size_t il = 0; il < options.gpu_experts.size(); ++il)
    if (!options.gpu_experts[il].empty() && !w.layers[il].is_moe())
      fail("GPU experts given for layer ", il, ", which has no routed experts");
  if (!impl_->experts)
    for (const auto& L : w.layers)
      if (L.is_moe()) {  // every routed expert on the GPU needs no CPU engine; anything else does
        bool all = false;
        const size_t il = size_t(&L - w.layers.data());
        if (il < options.gpu_experts.size() && !options.gpu_experts[il].empty())
          all = std::find(options.gpu_experts[il].begin(), options.gpu_experts[il].end(), uint8_t(0)) ==
                options.gpu_experts[il].end();
        if (!all) fail("the hybrid deepseek2 pass needs a RoutedExperts implementation for the experts not on the GPU");
      }
  impl_->place();
  impl_->upload_weights();
  impl_->declare_activations();
  impl_->sched->set_program(impl_->program());
}

Deepseek2Hybrid::~Deepseek2Hybrid() = default;

int64_t Deepseek2Hybrid::n_vocab() const { return impl_->w.hp.n_vocab; }
int64_t Deepseek2Hybrid::n_past() const { return impl_->n_past[0]; }
void Deepseek2Hybrid::reset() {
  std::fill(impl_->n_past.begin(), impl_->n_past.end(), 0);
  for (auto& c : impl_->cpu_caches) c.reset();
}
void Deepseek2Hybrid::seek(int64_t n_past) {
  if (n_past < 0 || n_past >= int64_t(impl_->opt.max_context))
    fail("seek to ", n_past, ": outside the KV cache of ", impl_->opt.max_context, " rows");
  if (!impl_->cpu_caches.empty())
    fail("seek: some attention layers run on the CPU, whose latent cache holds what was computed");
  impl_->n_past[0] = n_past;
}

void Deepseek2Hybrid::forward(std::span<const int32_t> tokens, std::vector<float>& logits) {
  const Deepseek2Hparams& h = impl_->w.hp;
  for (int32_t id : tokens)
    if (id < 0 || id >= h.n_vocab) fail("token id ", id, " is outside the vocabulary of ", h.n_vocab);
  if (impl_->n_past[0] + int64_t(tokens.size()) > int64_t(impl_->opt.max_context))
    fail("context full: ", impl_->n_past[0], " + ", tokens.size(), " tokens exceed the KV cache of ",
         impl_->opt.max_context, " (raise --ctx)");
  logits.resize(tokens.size() * size_t(h.n_vocab));
  impl_->last_rows_only = false;
  for (size_t i = 0; i < tokens.size(); i += impl_->opt.max_batch) {
    const size_t n = std::min<size_t>(impl_->opt.max_batch, tokens.size() - i);
    impl_->tokens = tokens.subspan(i, n);
    impl_->batch = {Chunk{0, 0, uint32_t(n)}};
    impl_->sched->run(uint32_t(n), logits.data() + i * size_t(h.n_vocab));
    impl_->n_past[0] += int64_t(n);
  }
}

int Deepseek2Hybrid::slots() const { return int(impl_->n_past.size()); }
int64_t Deepseek2Hybrid::max_context() const { return int64_t(impl_->opt.max_context); }

int64_t Deepseek2Hybrid::n_past(int slot) const {
  check_slot(*this, slot, "n_past");
  return impl_->n_past[size_t(slot)];
}

void Deepseek2Hybrid::truncate(int slot, int64_t n) {
  check_truncate(*this, slot, n);
  impl_->n_past[size_t(slot)] = n;  // GPU rows past n are overwritten by the next tokens
  if (!impl_->cpu_caches.empty()) impl_->cpu_caches[size_t(slot)].truncate(n);
}

void Deepseek2Hybrid::copy_prefix(int src, int dst, int64_t n) {
  check_copy_prefix(*this, src, dst, n);
  Impl& m = *impl_;
  if (n > 0)
    for (const auto& [g, cache] : m.caches) {
      const uint32_t per_slot = m.layers_on.at(g);
      const uint64_t bytes = uint64_t(n) * cache->row_halves() * 2;
      gpu::CommandSequence seq(m.sched->device(g));
      for (uint32_t l = 0; l < per_slot; ++l)
        seq.copy(cache->layer(uint32_t(src) * per_slot + l).sub(0, bytes),
                 cache->layer(uint32_t(dst) * per_slot + l).sub(0, bytes));
      seq.run();
    }
  if (!m.cpu_caches.empty()) m.cpu_caches[size_t(dst)].assign_prefix(m.cpu_caches[size_t(src)], n);
  m.n_past[size_t(dst)] = n;
}

void Deepseek2Hybrid::forward(std::span<const SequenceChunk> chunks, std::vector<float>& last_logits) {
  check_chunks(*this, chunks);
  Impl& m = *impl_;
  const size_t nv = size_t(m.w.hp.n_vocab);
  last_logits.resize(chunks.size() * nv);
  if (chunks.empty()) return;
  // Passes of at most max_batch rows: every chunk with tokens left gives the next pass a piece
  // (a long prompt spreads over several passes); a chunk's logits come from the pass with its
  // last token.
  std::vector<size_t> done(chunks.size(), 0);
  std::vector<int32_t> rows;
  std::vector<size_t> owner;  // chunk of each piece
  std::vector<float> out;
  std::string layout;
  m.last_rows_only = true;
  for (;;) {
    rows.clear();
    owner.clear();
    m.batch.clear();
    layout.clear();
    for (size_t i = 0; i < chunks.size(); ++i) {
      const size_t left = chunks[i].tokens.size() - done[i];
      const size_t take = std::min<size_t>(left, m.opt.max_batch - rows.size());
      if (take == 0) continue;
      m.batch.push_back(Chunk{chunks[i].slot, uint32_t(rows.size()), uint32_t(take)});
      owner.push_back(i);
      rows.insert(rows.end(), chunks[i].tokens.begin() + std::ptrdiff_t(done[i]),
                  chunks[i].tokens.begin() + std::ptrdiff_t(done[i] + take));
      layout += std::to_string(chunks[i].slot) + ":" + std::to_string(take) + ",";
      if (rows.size() == m.opt.max_batch) break;
    }
    if (rows.empty()) break;
    m.tokens = rows;
    out.resize(m.batch.size() * nv);
    m.sched->run(uint32_t(rows.size()), out.data(), uint32_t(m.batch.size()), layout);
    for (size_t p = 0; p < m.batch.size(); ++p) {
      const size_t i = owner[p];
      done[i] += m.batch[p].n;
      m.n_past[size_t(m.batch[p].slot)] += m.batch[p].n;
      if (done[i] == chunks[i].tokens.size())
        std::copy_n(out.data() + p * nv, nv, last_logits.data() + i * nv);
    }
  }
  m.last_rows_only = false;
}

uint64_t Deepseek2Hybrid::kv_cache_bytes() const {
  uint64_t total = 0;
  for (const auto& [g, c] : impl_->caches) total += uint64_t(c->n_layer()) * c->max_tokens() * c->row_halves() * 2;
  return total;
}

std::string Deepseek2Hybrid::device_name() const {
  std::string s;
  for (int g : impl_->sched->gpus()) s += (s.empty() ? "" : ", ") + impl_->sched->device(g).info().name;
  return s.empty() ? "no GPU" : s;
}
uint64_t Deepseek2Hybrid::device_bytes() const { return impl_->sched->device_bytes(); }

double Deepseek2Hybrid::last_gpu_milliseconds() const {
  double total = 0;
  for (const auto& t : impl_->sched->last_timings()) total += t.milliseconds;
  return total;
}

const HybridStepTimes& Deepseek2Hybrid::last_step_times() const { return impl_->sched->last_times(); }

void Deepseek2Hybrid::set_profile(bool on) {
  impl_->opt.profile = on;
  impl_->sched->set_profile(on);
}

std::string Deepseek2Hybrid::profile_report() const {
  std::map<std::string, std::pair<double, int>> by_label;
  double total = 0;
  const auto& timings = impl_->sched->last_timings();
  for (const auto& t : timings) {
    auto& e = by_label[t.label];
    e.first += t.milliseconds;
    e.second++;
    total += t.milliseconds;
  }
  std::ostringstream s;
  s << "GPU time " << total << " ms in " << timings.size() << " dispatches\n";
  for (const auto& [label, e] : by_label) s << "  " << label << ": " << e.first << " ms (" << e.second << ")\n";
  return s.str();
}

}  // namespace tandem
