// Multi-head latent attention (DeepSeek V2/V3) in the absorbed form, for decode and prefill:
//   q_lat[h] = k_b[h] q_nope[h]                     (record_matmul, per-head weights)
//   o_lat[h] = softmax_j(scale (q_lat[h].c_kv[j] + q_pe[h].k_pe[j])) c_kv[j],  j <= pos[t]
//   out[h]   = v_b[h] o_lat[h]                      (record_matmul, per-head weights)
// Shaders: shaders/mla_attention_grouped.comp (a workgroup serves 8 (query, head) rows from one
// read of each key tile staged in shared memory; online softmax), shaders/mla_attention.comp (one
// head x query per workgroup: the fallback for shapes the grouped kernel does not take) and
// shaders/mla_combine.comp (merges split-context partials).
#pragma once

#include <cstdint>

#include "runtime/gpu/gpu_weight.h"
#include "runtime/gpu/latent_kv_cache.h"

namespace tandem::gpu {

struct MlaShape {
  uint32_t n_head = 0;
  uint32_t kv_lora_rank = 0;  // L (512)
  uint32_t qk_nope_dim = 0;   // 128
  uint32_t qk_rope_dim = 0;   // R (64)
  uint32_t v_head_dim = 0;    // 128
};

struct MlaWeights {
  GpuWeight k_b;  // attn_k_b: n_head * L rows of qk_nope_dim (per head: L rows)
  GpuWeight v_b;  // attn_v_b: n_head * v_head_dim rows of L
};

// Attention core only: q_lat (n_tokens x n_head x L) and q_pe (rope part of q, rotated) against
// one cache layer; writes o_lat (n_tokens x n_head x L). Strides in floats.
struct MlaCoreLayout {
  uint32_t q_lat_token_stride, q_lat_head_stride;
  uint32_t q_pe_token_stride, q_pe_head_stride;
  uint32_t out_token_stride, out_head_stride;
};
// Which attention kernel record_mla_core uses: Auto picks the grouped kernel whenever the shape
// allows it (kv_lora_rank <= 512 and a multiple of 4, rope a multiple of 4, rank + rope <= 576,
// 28 KiB of shared memory); PerHead forces the fallback (tests and benchmarks compare the two).
enum class MlaKernel { Auto, PerHead };
bool mla_grouped_supported(const GpuDeviceInfo& info, const MlaShape& shape);

void record_mla_core(CommandSequence& seq, const MlaShape& shape, const GpuSpan& q_lat, const GpuSpan& q_pe,
                     const LatentKvCache& cache, uint32_t layer, const GpuSpan& positions, uint32_t n_tokens,
                     float scale, const GpuSpan& o_lat, const MlaCoreLayout& layout,
                     MlaKernel kernel = MlaKernel::Auto);

// The whole absorbed attention. q: n_tokens x n_head x (nope + rope) floats with the rope part
// already rotated; positions: int32 per token (token t attends to cache rows 0..pos[t], which must
// already hold this step's keys: record_kv_store first); out receives n_tokens x n_head x
// v_head_dim floats. Prefill runs in chunks of at most chunk_tokens queries so that the scratch
// spans q_lat and o_lat need only min(n_tokens, chunk_tokens) x n_head x L floats each.
void record_mla_attention(CommandSequence& seq, const MlaShape& shape, const MlaWeights& weights, const GpuSpan& q,
                          const LatentKvCache& cache, uint32_t layer, const GpuSpan& positions, uint32_t n_tokens,
                          float scale, const GpuSpan& q_lat, const GpuSpan& o_lat, const GpuSpan& out,
                          uint32_t chunk_tokens = 64, MlaKernel kernel = MlaKernel::Auto);

// Floats each of the q_lat / o_lat scratch spans needs for n_tokens queries.
uint64_t mla_scratch_floats(const MlaShape& shape, uint32_t n_tokens, uint32_t chunk_tokens = 64);

}  // namespace tandem::gpu
