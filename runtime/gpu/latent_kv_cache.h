// The MLA KV cache on the GPU: per layer, max_tokens rows of [c_kv (kv_lora_rank) | k_pe (rope_dim)]
// in F16 or BF16 (576 16-bit elements per token for DeepSeek V2/V3). Rows are written by
// record_kv_store(); kernels that read the cache pick their shader variant by type().
#pragma once

#include <cstdint>
#include <string>

#include "runtime/gpu/command_sequence.h"
#include "runtime/gpu/kv_cache_type.h"

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

}  // namespace tandem::gpu
