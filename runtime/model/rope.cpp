#include "runtime/model/rope.h"

#include <algorithm>
#include <cmath>

namespace tandem {
namespace {

// Dimension (in pairs * 2 units, as YaRN defines it) whose wavelength makes n_rot rotations
// over the original context.
float yarn_corr_dim(int64_t n_dims, int64_t orig_ctx, float n_rot, float base) {
  return float(n_dims) * std::log(float(orig_ctx) / (n_rot * 2.0f * float(M_PI))) / (2.0f * std::log(base));
}

}  // namespace

Rope::Rope(const RopeParams& p) : p_(p) {
  const int64_t pairs = p.n_dims / 2;
  inv_freq_.resize(size_t(pairs));
  extrap_mix_.assign(size_t(pairs), 0.0f);
  for (int64_t i = 0; i < pairs; ++i)
    inv_freq_[size_t(i)] = std::pow(p.freq_base, -2.0f * float(i) / float(p.n_dims));
  if (p.yarn && p.freq_scale != 1.0f) {
    const float low = std::max(0.0f, std::floor(yarn_corr_dim(p.n_dims, p.yarn_orig_ctx, p.yarn_beta_fast, p.freq_base)));
    const float high = std::min(float(p.n_dims - 1),
                                std::ceil(yarn_corr_dim(p.n_dims, p.yarn_orig_ctx, p.yarn_beta_slow, p.freq_base)));
    for (int64_t i = 0; i < pairs; ++i) {
      const float y = (float(i) - low) / std::max(0.001f, high - low);
      extrap_mix_[size_t(i)] = 1.0f - std::min(1.0f, std::max(0.0f, y));
    }
  }
}

float Rope::angle(int64_t pair, int64_t pos) const {
  const float extrap = float(pos) * inv_freq_[size_t(pair)];
  const float interp = p_.freq_scale * extrap;
  const float mix = extrap_mix_[size_t(pair)];
  return interp * (1.0f - mix) + extrap * mix;
}

void Rope::apply(float* x, int64_t pos) const {
  for (int64_t i = 0; i < p_.n_dims / 2; ++i) {
    const float theta = angle(i, pos);
    const float c = std::cos(theta), s = std::sin(theta);
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

}  // namespace tandem
