#include "runtime/cpu/mla_attention.h"

#include <algorithm>
#include <cstring>

#include "runtime/cpu/mla_kernels.h"
#include "runtime/core/error.h"
#include "runtime/cpu/row_ops.h"

namespace tandem::cpu {

LatentKvCacheCpu::LatentKvCacheCpu(int64_t n_layer, int64_t kv_lora, int64_t rope_dims)
    : kv_lora_(kv_lora), rope_(rope_dims), layers_(size_t(n_layer)), length_(size_t(n_layer), 0) {
  if (n_layer < 0 || kv_lora <= 0 || rope_dims < 0) fail("latent KV cache: bad shape");
}

void LatentKvCacheCpu::reset() {
  for (auto& l : layers_) l.clear();
  std::fill(length_.begin(), length_.end(), 0);
}

void LatentKvCacheCpu::truncate(int64_t n) {
  if (n < 0) fail("latent KV cache: cannot keep ", n, " rows");
  for (size_t l = 0; l < layers_.size(); ++l) {
    length_[l] = std::min(length_[l], n);
    layers_[l].resize(size_t(length_[l] * row_width()));
  }
}

void LatentKvCacheCpu::assign_prefix(const LatentKvCacheCpu& src, int64_t n) {
  if (src.n_layer() != n_layer() || src.kv_lora_ != kv_lora_ || src.rope_ != rope_)
    fail("latent KV cache: copying a prefix between caches of different shapes");
  if (n < 0) fail("latent KV cache: cannot copy ", n, " rows");
  for (size_t l = 0; l < layers_.size(); ++l) {
    const int64_t rows = std::min(n, src.length_[l]);
    const auto& from = src.layers_[l];
    layers_[l].assign(from.begin(), from.begin() + std::ptrdiff_t(rows * row_width()));
    length_[l] = rows;
  }
}

float* LatentKvCacheCpu::append(int64_t layer, int64_t n) {
  auto& rows = layers_.at(size_t(layer));
  int64_t& len = length_[size_t(layer)];
  rows.resize(size_t((len + n) * row_width()));  // vector growth keeps appends amortised O(1)
  float* first = rows.data() + len * row_width();
  len += n;
  return first;
}

void mla_attention(ThreadPool& pool, experts::CpuIsa isa, const MlaShape& s, const float* rows,
                   int64_t first_pos, int64_t n_tokens, const float* queries, float* out) {
  if (n_tokens <= 0) return;
  const bool wide = (isa == experts::CpuIsa::Avx512 || isa == experts::CpuIsa::Amx) && experts::cpu_supports(isa);
  const auto scores_fn = wide ? avx512::mla_scores : mla_scores_generic;
  const auto values_fn = wide ? avx512::mla_values : mla_values_generic;
  const auto softmax_fn = wide ? avx512::softmax_rows : softmax_rows_generic;
  const int64_t nh = s.n_heads, W = s.row_width, L = s.kv_lora;
  // Heads per work item: as many as keep every thread busy (they share each cache row read).
  const int64_t want_items = int64_t(pool.size()) * 2;
  const int64_t groups_per_token = std::clamp<int64_t>((want_items + n_tokens - 1) / n_tokens, 1, nh);
  const int64_t group = (nh + groups_per_token - 1) / groups_per_token;
  const int64_t groups = (nh + group - 1) / group;
  // Later tokens see more of the cache: hand them out first so the long items do not come last.
  pool.parallel_for(n_tokens * groups, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    for (int64_t i = b; i < e; ++i) {
      const int64_t item = n_tokens * groups - 1 - i;
      const int64_t t = item / groups;
      const int64_t h0 = (item % groups) * group, h1 = std::min(nh, h0 + group), g = h1 - h0;
      const int64_t ctx = first_pos + t + 1;
      const int64_t stride = (ctx + 15) / 16 * 16;
      scores.resize(size_t(g * stride));
      const MlaKernelArgs a{rows, ctx, W, g, stride};
      scores_fn(a, queries + (t * nh + h0) * W, s.scale, scores.data());
      softmax_fn(scores.data(), g, ctx, stride);
      values_fn(a, scores.data(), L, out + (t * nh + h0) * L);
    }
  });
}

}  // namespace tandem::cpu
