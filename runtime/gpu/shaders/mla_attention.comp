#version 450
// Absorbed multi-head latent attention for one (head, query token) per workgroup, the fallback for
// shapes that mla_attention_grouped.comp does not take (it reads the cache once per head):
//   s_j = scale * (q_lat . c_kv[j] + q_pe . k_pe[j])  for j <= pos[t]  (causal)
//   o_lat = sum_j softmax(s)_j * c_kv[j]
// over an F16 (BF16 with KV_BF16) cache of rows [c_kv (L) | k_pe (R)]. Keys are visited in tiles of WG with an online
// (running max) softmax, so no score buffer is needed and decode and prefill share the kernel.
// Long contexts are split (flash-decoding): workgroup z takes the z-th of up to n_split equal
// slices (of at least MIN_SLICE keys) of keys 0..pos[t] and, when n_split > 1, writes its
// unnormalised partial (o, max, sum) to `part` for mla_combine.comp (sum 0: empty slice); with
// n_split == 1 it writes the result.
#extension GL_GOOGLE_include_directive : require
#include "kv_format.glsl"
layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer QLat { float q_lat[]; };
layout(binding = 1) readonly buffer QPe { float q_pe[]; };
layout(binding = 2) readonly buffer Cache { uint cache[]; };
layout(binding = 3) readonly buffer Pos { int pos[]; };
layout(binding = 4) buffer Out { float o[]; };
layout(binding = 5) buffer Part { float part[]; };  // [t][h][split]: L floats of o, then max, sum
layout(push_constant) uniform Push {
  uint L, R, ql0, ql_tok, ql_head, qp0, qp_tok, qp_head, row_words, pos0, o0, o_tok, o_head;
  float scale;
  uint n_split, n_head;
} p;

const uint MAX_Q = 1152u;     // L + R
const uint MAX_WORDS = 8u;    // latent pairs per thread: L <= 2 * 8 * WG
const float NEG = -3.402823e38;
const uint MIN_SLICE = 64u;   // keys per split slice at least (short contexts use fewer slices)
shared float q[MAX_Q];
shared float prob[WG];

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint n_all = uint(pos[p.pos0 + t]) + 1u;
  const uint slice = max((n_all + p.n_split - 1u) / p.n_split, MIN_SLICE);
  const uint k0 = gl_WorkGroupID.z * slice;
  if (k0 >= n_all) {  // past the context: an empty partial (sum 0), which mla_combine.comp skips
    if (gl_LocalInvocationID.x == 0u) {
      const uint e = ((t * p.n_head + h) * p.n_split + gl_WorkGroupID.z) * (p.L + 2u);
      part[e + p.L] = NEG;
      part[e + p.L + 1u] = 0.0;
    }
    return;  // uniform exit
  }
  const uint n_kv = min(k0 + slice, n_all);
  const uint qb = p.ql0 + t * p.ql_tok + h * p.ql_head, pb = p.qp0 + t * p.qp_tok + h * p.qp_head;
  for (uint i = tid; i < p.L; i += WG) q[i] = q_lat[qb + i];
  for (uint i = tid; i < p.R; i += WG) q[p.L + i] = q_pe[pb + i];
  barrier();

  const uint words = (p.L + p.R) / 2u, lat_words = p.L / 2u;
  vec2 acc[MAX_WORDS];
  for (uint i = 0u; i < MAX_WORDS; ++i) acc[i] = vec2(0.0);
  float m = NEG, denom = 0.0;

  for (uint t0 = k0; t0 < n_kv; t0 += WG) {
    const uint j = t0 + tid;
    float s = NEG;
    if (j < n_kv) {
      const uint rb = j * p.row_words;
      float d = 0.0;
      for (uint w = 0u; w < words; ++w) {
        const vec2 kv = unpack_kv(cache[rb + w]);
        d += kv.x * q[2u * w] + kv.y * q[2u * w + 1u];
      }
      s = d * p.scale;
    }
    prob[tid] = s;
    barrier();
    float tile_max = NEG;
    const uint n = min(WG, n_kv - t0);
    for (uint k = 0u; k < n; ++k) tile_max = max(tile_max, prob[k]);
    const float m_new = max(m, tile_max);
    const float corr = exp(m - m_new);
    barrier();
    prob[tid] = j < n_kv ? exp(s - m_new) : 0.0;
    barrier();
    float tile_sum = 0.0;
    for (uint k = 0u; k < n; ++k) tile_sum += prob[k];
    denom = denom * corr + tile_sum;
    for (uint i = 0u; i < MAX_WORDS; ++i) acc[i] *= corr;
    for (uint k = 0u; k < n; ++k) {
      const float pk = prob[k];
      const uint rb = (t0 + k) * p.row_words;
      for (uint i = 0u; i < MAX_WORDS; ++i) {
        const uint w = tid + i * WG;
        if (w < lat_words) acc[i] += pk * unpack_kv(cache[rb + w]);
      }
    }
    m = m_new;
    barrier();
  }
  if (p.n_split > 1u) {
    const uint pb = ((t * p.n_head + h) * p.n_split + gl_WorkGroupID.z) * (p.L + 2u);
    for (uint i = 0u; i < MAX_WORDS; ++i) {
      const uint w = tid + i * WG;
      if (w < lat_words) {
        part[pb + 2u * w] = acc[i].x;
        part[pb + 2u * w + 1u] = acc[i].y;
      }
    }
    if (tid == 0u) {
      part[pb + p.L] = m;
      part[pb + p.L + 1u] = denom;
    }
    return;
  }
  const uint ob = p.o0 + t * p.o_tok + h * p.o_head;
  const float inv = 1.0 / denom;
  for (uint i = 0u; i < MAX_WORDS; ++i) {
    const uint w = tid + i * WG;
    if (w < lat_words) {
      o[ob + 2u * w] = acc[i].x * inv;
      o[ob + 2u * w + 1u] = acc[i].y * inv;
    }
  }
}
