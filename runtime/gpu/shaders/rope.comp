#version 450
// Rotary position embedding in place, with YaRN scaling. For token t and head h the rotated
// slice starts at x0 + t*token_stride + h*head_stride; pair i is (2i, 2i+1) in normal mode
// (deepseek2) or (i, i + dim/2) in NeoX mode. theta_i = pos * base^(-2i/dim), mixed between
// interpolated (freq_scale * theta) and extrapolated by the YaRN ramp over [corr_lo, corr_hi].
layout(local_size_x = 64) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(push_constant) uniform Push {
  uint dim, n_heads, x0, token_stride, head_stride, pos0, neox;
  float log2_base, freq_scale, ext_factor, attn_factor, corr_lo, corr_hi;
} p;
void main() {
  const uint t = gl_WorkGroupID.x;
  const uint half_dim = p.dim / 2u;
  const float position = float(pos[p.pos0 + t]);
  for (uint j = gl_LocalInvocationID.x; j < p.n_heads * half_dim; j += 64u) {
    const uint h = j / half_dim, i = j % half_dim;
    const float extrap = position * exp2(-float(2u * i) / float(p.dim) * p.log2_base);
    const float interp = p.freq_scale * extrap;
    float theta = interp, mscale = p.attn_factor;
    if (p.ext_factor != 0.0) {
      const float y = (float(i) - p.corr_lo) / max(0.001, p.corr_hi - p.corr_lo);
      const float mix_ = (1.0 - clamp(y, 0.0, 1.0)) * p.ext_factor;
      theta = interp * (1.0 - mix_) + extrap * mix_;
      mscale *= 1.0 + 0.1 * log(1.0 / p.freq_scale);
    }
    const float c = cos(theta) * mscale, s = sin(theta) * mscale;
    const uint base = p.x0 + t * p.token_stride + h * p.head_stride;
    const uint a = base + (p.neox != 0u ? i : 2u * i);
    const uint b = a + (p.neox != 0u ? half_dim : 1u);
    const float xa = x[a], xb = x[b];
    x[a] = xa * c - xb * s;
    x[b] = xa * s + xb * c;
  }
}
