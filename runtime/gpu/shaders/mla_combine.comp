#version 450
// Merges the n_split partial results of mla_attention.comp / mla_attention_grouped.comp for one
// (head, query) row per workgroup:
//   o = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s,  M = max_s m_s
// over the slices that saw keys (l_s > 0; the others hold no o_s and are skipped).
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint L, n_split, n_head, o0, o_tok, o_head; } p;
const uint MAX_SPLIT = 64u;
shared float weight[MAX_SPLIT];

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint base = (t * p.n_head + h) * p.n_split * (p.L + 2u);
  float M = -3.402823e38;
  for (uint s = 0u; s < p.n_split; ++s) {
    const uint b = base + s * (p.L + 2u);
    if (part[b + p.L + 1u] > 0.0) M = max(M, part[b + p.L]);
  }
  float denom = 0.0;
  for (uint s = 0u; s < p.n_split; ++s) {
    const uint b = base + s * (p.L + 2u);
    const float l = part[b + p.L + 1u];
    if (l > 0.0) denom += exp(part[b + p.L] - M) * l;
  }
  if (tid < p.n_split) {
    const uint b = base + tid * (p.L + 2u);
    weight[tid] = part[b + p.L + 1u] > 0.0 ? exp(part[b + p.L] - M) / denom : 0.0;
  }
  barrier();
  const uint ob = p.o0 + t * p.o_tok + h * p.o_head;
  for (uint i = tid; i < p.L; i += 128u) {
    float v = 0.0;
    for (uint s = 0u; s < p.n_split; ++s) {
      const float w = weight[s];
      if (w > 0.0) v += w * part[base + s * (p.L + 2u) + i];
    }
    o[ob + i] = v;
  }
}
