#include "runtime/gpu/latent_kv_cache.h"

#include <cmath>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

LatentKvCache::LatentKvCache(GpuDevice& device, uint32_t n_layer, uint32_t max_tokens, uint32_t kv_lora_rank,
                             uint32_t rope_dim, KvCacheType type)
    : n_layer_(n_layer), max_tokens_(max_tokens), rank_(kv_lora_rank), rope_(rope_dim), type_(type) {
  if (kv_lora_rank % 2 || rope_dim % 2) fail("latent KV cache: rank ", kv_lora_rank, " and rope dim ", rope_dim,
                                             " must be even");
  const auto& info = device.info();
  const uint64_t align = std::max<uint64_t>(256, info.min_storage_buffer_offset_alignment);
  const uint64_t raw = uint64_t(max_tokens) * row_halves() * 2;
  if (raw > info.max_storage_buffer_range)
    fail("latent KV cache: one layer of ", max_tokens, " tokens needs ", raw, " bytes, over the GPU's ",
         info.max_storage_buffer_range, "-byte binding limit; use a shorter context");
  layer_bytes_ = (raw + align - 1) / align * align;
  buffer_ = device.allocate(layer_bytes_ * n_layer, "latent KV cache");
  device.fill_zero(buffer_.span());
}

GpuSpan LatentKvCache::layer(uint32_t l) const {
  if (l >= n_layer_) fail("latent KV cache: layer ", l, " of ", n_layer_);
  return buffer_.sub(l * layer_bytes_, uint64_t(max_tokens_) * row_halves() * 2);
}

std::string LatentKvCache::shader(const char* kernel) const {
  return type_ == KvCacheType::BF16 ? std::string(kernel) + "_bf16" : std::string(kernel);
}

void record_kv_store(CommandSequence& seq, const LatentKvCache& cache, uint32_t layer, const GpuSpan& c_kv,
                     uint32_t ckv_stride, const GpuSpan& k_pe, uint32_t kpe_stride, const GpuSpan& positions,
                     uint32_t n_tokens) {
  if (n_tokens == 0) return;
  const uint32_t L = cache.kv_lora_rank(), R = cache.rope_dim();
  if (c_kv.size < (uint64_t(n_tokens - 1) * ckv_stride + L) * 4) fail("kv_store: c_kv span too small");
  if (k_pe.size < (uint64_t(n_tokens - 1) * kpe_stride + R) * 4) fail("kv_store: k_pe span too small");
  if (positions.size < uint64_t(n_tokens) * 4) fail("kv_store: positions span too small");
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto cb = bind_words(info, c_kv, "kv_store c_kv"), kb = bind_words(info, k_pe, "kv_store k_pe"),
             pb = bind_words(info, positions, "kv_store positions");
  const GpuSpan dst = cache.layer(layer);
  struct { uint32_t L, R, ckv0, ckv_stride, kpe0, kpe_stride, pos0, row_words, max_rows; } p{
      L, R, cb.first, ckv_stride, kb.first, kpe_stride, pb.first, cache.row_halves() / 2, cache.max_tokens()};
  seq.dispatch(dev.pipeline({cache.shader("kv_store"), 4, sizeof p, {}}), {cb.binding, kb.binding, pb.binding, dst}, p, n_tokens, 1,
               1, "kv_store");
}

void record_kv_norm_rope_store(CommandSequence& seq, const LatentKvCache& cache, uint32_t layer, const GpuSpan& kv,
                               uint32_t kv_stride, const GpuSpan& kv_norm, float eps, const GpuSpan& q_rope,
                               const RopeLayout& q, const GpuSpan& positions, uint32_t n_tokens,
                               const RopeParams& params) {
  if (n_tokens == 0) return;
  const uint32_t L = cache.kv_lora_rank(), R = cache.rope_dim();
  if (params.neox) fail("kv_norm_rope_store: NeoX rope is not supported (deepseek2 rotates consecutive pairs)");
  if (params.dim != R) fail("kv_norm_rope_store: rope dimension ", params.dim, " but the cache holds ", R);
  if (kv_stride < L + R) fail("kv_norm_rope_store: kv stride ", kv_stride, " is shorter than a row of ", L + R);
  if (kv.size < (uint64_t(n_tokens - 1) * kv_stride + L + R) * 4) fail("kv_norm_rope_store: kv span too small");
  if (kv_norm.size < uint64_t(L) * 4) fail("kv_norm_rope_store: norm weight of ", kv_norm.size / 4, " floats, need ", L);
  if (positions.size < uint64_t(n_tokens) * 4) fail("kv_norm_rope_store: positions span too small");
  if (q.n_heads == 0) fail("kv_norm_rope_store: no query heads");
  const uint64_t q_last = uint64_t(n_tokens - 1) * q.token_stride + uint64_t(q.n_heads - 1) * q.head_stride + R;
  if (q_rope.size < q_last * 4) fail("kv_norm_rope_store: q span of ", q_rope.size, " bytes, need ", q_last * 4);
  float lo = 0, hi = 0;
  if (params.ext_factor != 0.0f) {
    if (params.n_ctx_orig == 0) fail("kv_norm_rope_store: YaRN needs the original context length");
    yarn_corr_dims(params, lo, hi);
  }
  auto& dev = seq.device();
  const auto& info = dev.info();
  const auto kb = bind_words(info, kv, "kv_norm_rope_store kv"), wb = bind_words(info, kv_norm, "kv_norm_rope_store norm"),
             pb = bind_words(info, positions, "kv_norm_rope_store positions"),
             qb = bind_words(info, q_rope, "kv_norm_rope_store q");
  struct {
    uint32_t L, R, kv0, kv_stride, w0, pos0, row_words, max_rows, q0, q_token_stride, q_head_stride, n_heads;
    float eps, log2_base, freq_scale, ext_factor, attn_factor, corr_lo, corr_hi;
  } p{L, R, kb.first, kv_stride, wb.first, pb.first, cache.row_halves() / 2, cache.max_tokens(), qb.first,
      q.token_stride, q.head_stride, q.n_heads, eps, std::log2(params.freq_base), params.freq_scale,
      params.ext_factor, params.attn_factor, lo, hi};
  seq.dispatch(dev.pipeline({cache.shader("kv_norm_rope_store"), 5, sizeof p, {128}}),
               {kb.binding, wb.binding, pb.binding, cache.layer(layer), qb.binding}, p, n_tokens, 1, 1,
               "kv_norm_rope_store");
}

}  // namespace tandem::gpu
