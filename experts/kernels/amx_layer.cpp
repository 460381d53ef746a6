#include "experts/kernels/amx_layer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/core/knobs.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/ggml_type.h"

namespace tandem::experts {
namespace {

// Below this many tokens per expert the padded 16-token tile wastes most of its work and the
// larger layout costs more to stream than the row kernels' GGUF bytes (bench/README.md, AMX).
constexpr int64_t kDefaultMinTokens = 16;

inline float silu(float v) { return v / (1.0f + std::exp(-v)); }

using GatherFn = void (*)(const AmxFormat&, const void* const*, int, int64_t, AmxTokenBlock&);
using TileFn = void (*)(const AmxFormat&, const uint8_t*, int64_t, const AmxTokenBlock&, float*);

GatherFn gather_fn(bool emulated) { return emulated ? amx_emulated::gather : amx::gather; }
TileFn tile_fn(bool emulated) { return emulated ? amx_emulated::tile : amx::tile; }

struct Scratch {  // per thread: the gathered tokens of the current block
  AmxTokenBlock acts;
};
thread_local Scratch scratch;

bool legacy_to_q8_0(GgmlType t) { return t == GgmlType::Q4_0 || t == GgmlType::Q5_0; }

// One Q4_0 / Q5_0 row as Q8_0 with the same scales: q - 8 (Q4_0) or q - 16 (Q5_0) fits int8.
void convert_row_to_q8_0(GgmlType t, const uint8_t* src, uint8_t* dst, int64_t cols) {
  auto* out = reinterpret_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < cols / 32; ++b) {
    if (t == GgmlType::Q4_0) {
      const auto& in = reinterpret_cast<const BlockQ4_0*>(src)[b];
      out[b].d = in.d;
      for (int j = 0; j < 16; ++j) {
        out[b].qs[j] = int8_t((in.qs[j] & 15) - 8);
        out[b].qs[j + 16] = int8_t((in.qs[j] >> 4) - 8);
      }
    } else {
      const auto& in = reinterpret_cast<const BlockQ5_0*>(src)[b];
      uint32_t qh;
      std::memcpy(&qh, in.qh, 4);
      out[b].d = in.d;
      for (int j = 0; j < 16; ++j) {
        out[b].qs[j] = int8_t(((in.qs[j] & 15) | ((qh >> j) & 1) << 4) - 16);
        out[b].qs[j + 16] = int8_t(((in.qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
      }
    }
  }
}

}  // namespace

int64_t amx_min_tokens() {
  return knobs::integer("TANDEM_AMX_MIN_TOKENS", 1, int64_t(1) << 30, kDefaultMinTokens);
}

bool amx_takes(GgmlType type) {
  if (!amx_format(type)) return false;
  if (type == GgmlType::Q4_K || type == GgmlType::Q6_K) {
    return knobs::flag("TANDEM_AMX_KQUANTS");
  }
  return true;
}

AmxLayer::AmxLayer(const MoeLayerWeights& w, const std::vector<std::vector<const uint8_t*>>& gate_at,
                   const std::vector<std::vector<const uint8_t*>>& up_at,
                   const std::vector<std::vector<const uint8_t*>>& down_at, const std::vector<int>& pool_nodes,
                   bool emulated)
    : w_(w), emulated_(emulated), min_tokens_(amx_min_tokens()) {
  if (w.gate_type == w.up_type && amx_takes(w.gate_type)) up_fmt_ = amx_format(w.gate_type);
  if (amx_takes(w.down_type)) down_fmt_ = amx_format(w.down_type);
  // Q4_0 / Q5_0 (V2-Lite's down: its 1408 columns are no multiple of 256) are Q8_0 blocks with
  // fewer bits: converted exactly, they run Q8_0's int8 tiles.
  const bool down_to_q8 = !down_fmt_ && legacy_to_q8_0(w.down_type) && knobs::flag("TANDEM_AMX_LEGACY");
  if (down_to_q8) down_fmt_ = amx_format(GgmlType::Q8_0);
  if (up_fmt_ && w.hidden % up_fmt_->step_cols != 0) up_fmt_.reset();
  if (down_fmt_ && w.ffn % down_fmt_->step_cols != 0) down_fmt_.reset();
  if (!up_fmt_ && !down_fmt_) return;
  const int64_t gu_bytes = up_fmt_ ? amx_matrix_bytes(*up_fmt_, w.ffn, w.hidden) : 0;
  const int64_t d_bytes = down_fmt_ ? amx_matrix_bytes(*down_fmt_, w.hidden, w.ffn) : 0;
  const int64_t gu_row = int64_t(ggml_row_bytes(w.gate_type, uint64_t(w.hidden)));
  const int64_t d_row = int64_t(ggml_row_bytes(w.down_type, uint64_t(w.ffn)));
  const size_t n_pools = gate_at.size();
  gate_.assign(n_pools, std::vector<const uint8_t*>(size_t(w.n_experts), nullptr));
  up_ = down_ = gate_;
  struct Job {
    const uint8_t* src;
    int64_t row_bytes, rows, cols;
    const AmxFormat* f;
    uint8_t* dst;
  };
  std::vector<Job> jobs;
  const size_t expert_bytes = size_t(2 * gu_bytes + d_bytes);  // a multiple of 64 (whole steps)
  for (size_t p = 0; p < n_pools; ++p) {
    // One block per pool: per-expert blocks would each round up to a 2 MB huge page.
    int64_t n = 0;
    for (int64_t e = 0; e < w.n_experts; ++e) n += gate_at[p][size_t(e)] != nullptr;
    if (n == 0) continue;
    memory_.push_back(std::make_unique<NodeMemory>(expert_bytes * size_t(n), pool_nodes[p]));
    uint8_t* next = memory_.back()->data();
    for (int64_t e = 0; e < w.n_experts; ++e) {
      if (!gate_at[p][size_t(e)]) continue;
      uint8_t* dst = next;
      next += expert_bytes;
      extra_bytes_ += 2 * gu_bytes + d_bytes;
      if (up_fmt_) {
        gate_[p][size_t(e)] = dst, up_[p][size_t(e)] = dst + gu_bytes;
        jobs.push_back({gate_at[p][size_t(e)], gu_row, w.ffn, w.hidden, &*up_fmt_, dst});
        jobs.push_back({up_at[p][size_t(e)], gu_row, w.ffn, w.hidden, &*up_fmt_, dst + gu_bytes});
      }
      if (down_fmt_) {
        down_[p][size_t(e)] = dst + 2 * gu_bytes;
        jobs.push_back({down_at[p][size_t(e)], d_row, w.hidden, w.ffn, &*down_fmt_, dst + 2 * gu_bytes});
      }
    }
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<uint8_t> q8;
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      const Job& job = jobs[j];
      if (down_to_q8 && job.f == &*down_fmt_) {
        const int64_t q8_row = int64_t(ggml_row_bytes(GgmlType::Q8_0, uint64_t(job.cols)));
        q8.resize(size_t(q8_row * job.rows));
        for (int64_t r = 0; r < job.rows; ++r)
          convert_row_to_q8_0(w.down_type, job.src + r * job.row_bytes, q8.data() + r * q8_row, job.cols);
        amx_repack(*job.f, q8.data(), q8_row, job.rows, job.cols, job.dst);
        continue;
      }
      amx_repack(*job.f, job.src, job.row_bytes, job.rows, job.cols, job.dst);
    }
  };
  const size_t n_threads = std::min<size_t>(jobs.size(), std::max(1u, std::min(16u, std::thread::hardware_concurrency())));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n_threads; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
}

AmxLayer::~AmxLayer() = default;

bool AmxLayer::up(int pool, int32_t e, int64_t r0, int64_t r1, const int32_t* tokens, int64_t n,
                  const uint8_t* x_act, int64_t x_row, float* h) const {
  if (!up_fmt_ || n < min_tokens_) return false;
  const AmxFormat& f = *up_fmt_;
  const int64_t hidden = w_.hidden, ffn = w_.ffn, group_bytes = amx_group_bytes(f, hidden);
  const uint8_t* gate = gate_[size_t(pool)][size_t(e)];
  const uint8_t* up = up_[size_t(pool)][size_t(e)];
  const GatherFn gather = gather_fn(emulated_);
  const TileFn tile = tile_fn(emulated_);
  AmxTokenBlock& acts = scratch.acts;
  alignas(64) float g[kAmxTokens * kAmxRows], u[kAmxTokens * kAmxRows];
  for (int64_t b0 = 0; b0 < n; b0 += kAmxTokens) {
    const int nb = int(std::min<int64_t>(kAmxTokens, n - b0));
    const void* rows[kAmxTokens];
    for (int j = 0; j < nb; ++j) rows[j] = x_act + tokens[b0 + j] * x_row;
    gather(f, rows, nb, hidden, acts);
    for (int64_t grp = r0 / kAmxRows; grp * kAmxRows < r1; ++grp) {
      tile(f, gate + grp * group_bytes, hidden, acts, g);
      tile(f, up + grp * group_bytes, hidden, acts, u);
      const int64_t lo = std::max(r0, grp * kAmxRows), hi = std::min(r1, (grp + 1) * kAmxRows);
      for (int j = 0; j < nb; ++j)
        for (int64_t r = lo; r < hi; ++r) {
          const int i = j * kAmxRows + int(r - grp * kAmxRows);
          h[(b0 + j) * ffn + r] = silu(g[i]) * u[i];
        }
    }
  }
  return true;
}

bool AmxLayer::down(int pool, int32_t e, int64_t r0, int64_t r1, const uint8_t* h_act, int64_t h_row, int64_t n,
                    const int32_t* tokens, const float* weights, float* out) const {
  if (!down_fmt_ || n < min_tokens_) return false;
  const AmxFormat& f = *down_fmt_;
  const int64_t hidden = w_.hidden, ffn = w_.ffn, group_bytes = amx_group_bytes(f, ffn);
  const uint8_t* down = down_[size_t(pool)][size_t(e)];
  const GatherFn gather = gather_fn(emulated_);
  const TileFn tile = tile_fn(emulated_);
  AmxTokenBlock& acts = scratch.acts;
  alignas(64) float d[kAmxTokens * kAmxRows];
  for (int64_t b0 = 0; b0 < n; b0 += kAmxTokens) {
    const int nb = int(std::min<int64_t>(kAmxTokens, n - b0));
    const void* rows[kAmxTokens];
    for (int j = 0; j < nb; ++j) rows[j] = h_act + (b0 + j) * h_row;
    gather(f, rows, nb, ffn, acts);
    for (int64_t grp = r0 / kAmxRows; grp * kAmxRows < r1; ++grp) {
      tile(f, down + grp * group_bytes, ffn, acts, d);
      const int64_t lo = std::max(r0, grp * kAmxRows), hi = std::min(r1, (grp + 1) * kAmxRows);
      for (int j = 0; j < nb; ++j) {
        float* o = out + tokens[b0 + j] * hidden;
        const float wj = weights[b0 + j];
        for (int64_t r = lo; r < hi; ++r) o[r] += wj * d[j * kAmxRows + int(r - grp * kAmxRows)];
      }
    }
  }
  return true;
}

}  // namespace tandem::experts
