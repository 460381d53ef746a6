#version 450
// Rotary position embedding in place, with YaRN scaling (rope.glsl). For token t and head h the
// rotated slice starts at x0 + t*token_stride + h*head_stride; pair i is (2i, 2i+1) in normal mode
// (deepseek2) or (i, i + dim/2) in NeoX mode.
#extension GL_GOOGLE_include_directive : require
#include "rope.glsl"
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
    const vec2 cs = rope_cos_sin(position, i, p.dim, p.log2_base, p.freq_scale, p.ext_factor, p.attn_factor,
                                 p.corr_lo, p.corr_hi);
    const uint base = p.x0 + t * p.token_stride + h * p.head_stride;
    const uint a = base + (p.neox != 0u ? i : 2u * i);
    const uint b = a + (p.neox != 0u ? half_dim : 1u);
    const float xa = x[a], xb = x[b];
    x[a] = xa * cs.x - xb * cs.y;
    x[b] = xa * cs.y + xb * cs.x;
  }
}
