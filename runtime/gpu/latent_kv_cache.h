// The MLA KV cache on the GPU: per layer, max_tokens rows of [c_kv (kv_lora_rank) | k_pe (rope_dim)]
// in F16 or BF16 (576 16-bit elements per token for DeepSeek V2/V3). Rows are written by
// record_kv_store(); kernels that read the cache pick their shader variant by type().
#pragma once

#include <cstdint>
#include <string>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/kv_cache_type.h"
#include "runtime/gpu/rope.h"

namespace tandem::gpu {

class LatentKvCache {
 public:
  // Throws Error when one layer exceeds a single binding (maxStorageBufferRange) or memory runs out.
  LatentKvCache(GpuDevice& device, uint32_t n_layer, uint32_t max_tokens, uint32_t kv_lora_rank, uint32_t rope_dim,
                KvCacheType type = KvCacheType::F16);

  uint32_t n_layer() const { return n_layer_; }
  uint32_t max_tokens() const { return max_tokens_; }
  uint32_t kv_lora_rank() const { return rank_; }
  uint32_t rope_dim() const { return rope_; }
  uint32_t row_halves() const { return rank_ + rope_; }  // 16-bit elements per row, either type
  KvCacheType type() const { return type_; }
  // The shader of `kernel` that reads or writes this cache's type: "mla_attention" -> "mla_attention_bf16".
  std::string shader(const char* kernel) const;
  GpuSpan layer(uint32_t l) const;

 private:
  GpuBuffer buffer_;
  uint32_t n_layer_, max_tokens_, rank_, rope_;
  KvCacheType type_;
  uint64_t layer_bytes_ = 0;  // rounded up to the binding alignment
};

// Writes n_tokens rows at positions[t]: c_kv (normalised latent, kv_lora_rank floats per token,
// ckv_stride apart) and k_pe (rotated, rope_dim floats per token, kpe_stride apart).
void record_kv_store(CommandSequence& seq, const LatentKvCache& cache, uint32_t layer, const GpuSpan& c_kv,
                     uint32_t ckv_stride, const GpuSpan& k_pe, uint32_t kpe_stride, const GpuSpan& positions,
                     uint32_t n_tokens);

// What one MLA layer does per token between the kv_a/q projections and attention, in one dispatch:
// kv holds kv_a's raw output per token ([c_kv (kv_lora_rank) | k_pe (rope_dim)], kv_stride floats
// apart); c_kv is RMS-normalised with kv_norm (eps), k_pe rotated, and both stored as cache row
// positions[t]; the rope slices of q (q_rope: the first rotated float of token 0, head 0, laid out
// by q_layout's n_heads/strides) are rotated in place. Same results as record_rms_norm +
// record_rope (k, q) + record_kv_store. Normal (consecutive-pair) rope only, params.dim ==
// rope_dim.
void record_kv_norm_rope_store(CommandSequence& seq, const LatentKvCache& cache, uint32_t layer, const GpuSpan& kv,
                               uint32_t kv_stride, const GpuSpan& kv_norm, float eps, const GpuSpan& q_rope,
                               const RopeLayout& q_layout, const GpuSpan& positions, uint32_t n_tokens,
                               const RopeParams& params);

}  // namespace tandem::gpu
