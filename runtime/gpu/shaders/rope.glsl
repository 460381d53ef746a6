// The rotation of pair i (of dim/2) at a position, with YaRN scaling: theta_i = pos * base^(-2i/dim),
// mixed between interpolated (freq_scale * theta) and extrapolated by the ramp over
// [corr_lo, corr_hi]. Returns (cos, sin) times the magnitude. Shared by rope.comp and
// kv_norm_rope_store.comp so both rotate bit for bit alike.
vec2 rope_cos_sin(float position, uint i, uint dim, float log2_base, float freq_scale, float ext_factor,
                  float attn_factor, float corr_lo, float corr_hi) {
  const float extrap = position * exp2(-float(2u * i) / float(dim) * log2_base);
  const float interp = freq_scale * extrap;
  float theta = interp, mscale = attn_factor;
  if (ext_factor != 0.0) {
    const float y = (float(i) - corr_lo) / max(0.001, corr_hi - corr_lo);
    const float mix_ = (1.0 - clamp(y, 0.0, 1.0)) * ext_factor;
    theta = interp * (1.0 - mix_) + extrap * mix_;
    mscale *= 1.0 + 0.1 * log(1.0 / freq_scale);
  }
  return vec2(cos(theta), sin(theta)) * mscale;
}
