#version 450
// Merges the n_split partial results of mla_attention.comp / mla_attention_grouped.comp for one
// (head, query) row and 64 of its L columns per workgroup:
//   o = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s,  M = max_s m_s
// over the slices that saw keys (l_s > 0; the others hold no o_s and are skipped).
// Thread s reads slice s's (m, l) and the slice weights come from two shared-memory reductions;
// the columns are split over workgroups (z) so a decode step (16-128 heads, one query) spreads
// over the whole GPU. (The first version: one workgroup per row, every thread reading all 2 x 64
// (m, l) words in a serial loop; 21 us per call on an H200.)
const uint WG = 64u;  // = MAX_SPLIT: one thread per slice
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint L, n_split, n_head, o0, o_tok, o_head; } p;
const uint MAX_SPLIT = 64u;
const float NEG = -3.402823e38;
shared float weight[MAX_SPLIT];
shared float red[WG];

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint base = (t * p.n_head + h) * p.n_split * (p.L + 2u);
  float m = NEG, l = 0.0;
  if (tid < p.n_split) {
    const uint b = base + tid * (p.L + 2u);
    l = part[b + p.L + 1u];
    if (l > 0.0) m = part[b + p.L];
  }
  red[tid] = m;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1) {
    if (tid < s) red[tid] = max(red[tid], red[tid + s]);
    barrier();
  }
  const float M = red[0];
  barrier();
  const float e = l > 0.0 ? exp(m - M) : 0.0;
  red[tid] = e * l;
  barrier();
  for (uint s = WG / 2u; s > 0u; s >>= 1) {
    if (tid < s) red[tid] += red[tid + s];
    barrier();
  }
  weight[tid] = e / red[0];  // 0 for slices without keys (and threads past n_split)
  barrier();
  const uint i = gl_WorkGroupID.z * WG + tid;
  if (i >= p.L) return;
  float v = 0.0;
  for (uint s = 0u; s < p.n_split; ++s) {
    const float w = weight[s];
    if (w > 0.0) v += w * part[base + s * (p.L + 2u) + i];
  }
  o[p.o0 + t * p.o_tok + h * p.o_head + i] = v;
}
