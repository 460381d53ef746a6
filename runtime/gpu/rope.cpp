#include "runtime/gpu/rope.h"

#include <algorithm>
#include <cmath>

#include "runtime/core/error.h"
#include "runtime/gpu/float_binding.h"

namespace tandem::gpu {

void yarn_corr_dims(const RopeParams& p, float& lo, float& hi) {
  auto corr = [&](float beta) {
    return float(p.dim) * std::log(float(p.n_ctx_orig) / (beta * 2.0f * float(M_PI))) / (2.0f * std::log(p.freq_base));
  };
  lo = std::max(0.0f, std::floor(corr(p.beta_fast)));
  hi = std::min(float(p.dim - 1), std::ceil(corr(p.beta_slow)));
}

void record_rope(CommandSequence& seq, const GpuSpan& x, const GpuSpan& positions, const RopeLayout& l,
                 const RopeParams& params) {
  if (l.n_tokens == 0) return;
  if (params.dim == 0 || params.dim % 2) fail("GPU rope: dimension ", params.dim, " must be even and positive");
  const uint64_t last = uint64_t(l.n_tokens - 1) * l.token_stride + uint64_t(l.n_heads - 1) * l.head_stride + params.dim;
  if (x.size < last * 4) fail("GPU rope: span of ", x.size, " bytes, need ", last * 4);
  if (positions.size < uint64_t(l.n_tokens) * 4) fail("GPU rope: ", l.n_tokens, " tokens but positions hold ",
                                                      positions.size / 4);
  float lo = 0, hi = 0;
  if (params.ext_factor != 0.0f) {
    if (params.n_ctx_orig == 0) fail("GPU rope: YaRN needs the original context length");
    yarn_corr_dims(params, lo, hi);
  }
  auto& dev = seq.device();
  const auto xb = bind_words(dev.info(), x, "rope x"), pb = bind_words(dev.info(), positions, "rope positions");
  struct {
    uint32_t dim, n_heads, x0, token_stride, head_stride, pos0, neox;
    float log2_base, freq_scale, ext_factor, attn_factor, corr_lo, corr_hi;
  } p{params.dim, l.n_heads, xb.first, l.token_stride, l.head_stride, pb.first, params.neox ? 1u : 0u,
      std::log2(params.freq_base), params.freq_scale, params.ext_factor, params.attn_factor, lo, hi};
  seq.dispatch(dev.pipeline({"rope", 2, sizeof p, {}}), {xb.binding, pb.binding}, p, l.n_tokens, 1, 1, "rope");
}

}  // namespace tandem::gpu
