#include "runtime/gpu/latent_kv_cache.h"

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

}  // namespace tandem::gpu
