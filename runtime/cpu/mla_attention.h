// Multi-head latent attention in the absorbed form over a latent KV cache kept in fp32 on the
// CPU. A cache row holds one position: the normalised latent c_kv (kv_lora values) followed by
// the rotated shared rope key (rope values). A query row has the same layout: q_nope absorbed
// into the latent space, then the rotated q_pe, so one dot product gives the whole score.
#pragma once

#include <cstdint>
#include <vector>

#include "experts/cpu_isa.h"
#include "runtime/cpu/thread_pool.h"

namespace tandem::cpu {

class LatentKvCacheCpu {
 public:
  LatentKvCacheCpu(int64_t n_layer, int64_t kv_lora, int64_t rope_dims);
  void reset();  // every layer empty
  // Every layer keeps its first n rows (a layer holding fewer keeps them all: a pass that runs
  // only some layers here leaves the others empty).
  void truncate(int64_t n);
  // Every layer becomes the first n rows of src's (same shape; a shorter layer: all of it).
  void assign_prefix(const LatentKvCacheCpu& src, int64_t n);

  int64_t n_layer() const { return int64_t(layers_.size()); }
  int64_t kv_lora() const { return kv_lora_; }
  int64_t row_width() const { return kv_lora_ + rope_; }
  int64_t length(int64_t layer) const { return length_.at(size_t(layer)); }
  // Grows the layer by n positions and returns the first new row (row_width() floats per row).
  float* append(int64_t layer, int64_t n);
  const float* rows(int64_t layer) const { return layers_.at(size_t(layer)).data(); }

 private:
  int64_t kv_lora_, rope_;
  std::vector<std::vector<float>> layers_;
  std::vector<int64_t> length_;
};

struct MlaShape {
  int64_t n_heads = 0;
  int64_t kv_lora = 0;
  int64_t row_width = 0;  // kv_lora + rope dims
  float scale = 1.0f;     // applied to every score before the softmax
};

// For query token t (position first_pos + t, which sees cache rows 0 ... first_pos + t) and
// head h: out[(t * n_heads + h) * kv_lora ...] = sum_s p_s * rows[s][0 .. kv_lora), where
// p = softmax_s(scale * dot(queries[t * n_heads + h], rows[s])). Cost is linear in the context
// per query; heads of one token share each pass over the cache.
void mla_attention(ThreadPool& pool, experts::CpuIsa isa, const MlaShape& shape, const float* rows,
                   int64_t first_pos, int64_t n_tokens, const float* queries, float* out);

}  // namespace tandem::cpu
