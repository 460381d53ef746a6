#version 450
// One MLA layer's per-token work between the projections and attention, in one dispatch (one
// workgroup per token): the latent c_kv part of kv_a's output is RMS-normalised, k_pe rotated,
// both stored as cache row pos[t] (F16, or BF16 with KV_BF16: kv_format.glsl), and the rope
// slice of every query head rotated in place. Replaces rms_norm + rope(k) + rope(q) + kv_store.
#extension GL_GOOGLE_include_directive : require
#include "kv_format.glsl"
#include "rope.glsl"
layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer Kv { float kv[]; };  // per token [c_kv (L) | k_pe (R)]
layout(binding = 1) readonly buffer W { float w[]; };    // kv_a norm weight (L)
layout(binding = 2) readonly buffer Pos { int pos[]; };
layout(binding = 3) buffer Cache { uint cache[]; };
layout(binding = 4) buffer Q { float q[]; };             // rope slices at q0 + t*q_tok + h*q_head
layout(push_constant) uniform Push {
  uint L, R, kv0, kv_stride, w0, pos0, row_words, max_rows;
  uint q0, q_token_stride, q_head_stride, n_heads;
  float eps, log2_base, freq_scale, ext_factor, attn_factor, corr_lo, corr_hi;
} p;
shared float partial[WG];
void main() {
  const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint kb = p.kv0 + t * p.kv_stride;
  const float position = float(pos[p.pos0 + t]);
  const uint half_r = p.R / 2u;

  // Query heads first: independent of the reduction below.
  for (uint j = tid; j < p.n_heads * half_r; j += WG) {
    const uint h = j / half_r, i = j % half_r;
    const vec2 cs = rope_cos_sin(position, i, p.R, p.log2_base, p.freq_scale, p.ext_factor, p.attn_factor,
                                 p.corr_lo, p.corr_hi);
    const uint a = p.q0 + t * p.q_token_stride + h * p.q_head_stride + 2u * i;
    const float xa = q[a], xb = q[a + 1u];
    q[a] = xa * cs.x - xb * cs.y;
    q[a + 1u] = xa * cs.y + xb * cs.x;
  }

  float s = 0.0;
  for (uint i = tid; i < p.L; i += WG) s += kv[kb + i] * kv[kb + i];
  partial[tid] = s;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] += partial[tid + k];
    barrier();
  }
  const float inv = inversesqrt(partial[0] / float(p.L) + p.eps);
  const uint row = uint(pos[p.pos0 + t]);
  if (row >= p.max_rows) return;  // the host checks positions; never write outside the cache
  const uint half_l = p.L / 2u;
  for (uint wi = tid; wi < half_l + half_r; wi += WG) {
    vec2 v;
    if (wi < half_l) {
      const uint e = 2u * wi;
      v = vec2(kv[kb + e] * inv * w[p.w0 + e], kv[kb + e + 1u] * inv * w[p.w0 + e + 1u]);
    } else {
      const uint i = wi - half_l;
      const vec2 cs = rope_cos_sin(position, i, p.R, p.log2_base, p.freq_scale, p.ext_factor, p.attn_factor,
                                   p.corr_lo, p.corr_hi);
      const float xa = kv[kb + p.L + 2u * i], xb = kv[kb + p.L + 2u * i + 1u];
      v = vec2(xa * cs.x - xb * cs.y, xa * cs.y + xb * cs.x);
    }
    cache[row * p.row_words + wi] = pack_kv(v);
  }
}
