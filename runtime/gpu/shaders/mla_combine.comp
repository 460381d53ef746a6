#version 450
// Merges the n_split partial results of mla_attention.comp for one (head, query) per workgroup:
//   o = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s,  M = max_s m_s
// over the slices that hold keys (the same slicing as mla_attention.comp).
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(binding = 2) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint L, n_split, n_head, o0, o_tok, o_head, pos0; } p;
const uint MIN_SLICE = 64u;

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint base = (t * p.n_head + h) * p.n_split * (p.L + 2u);
  const uint n_all = uint(pos[p.pos0 + t]) + 1u;
  const uint slice = max((n_all + p.n_split - 1u) / p.n_split, MIN_SLICE);
  const uint used = (n_all + slice - 1u) / slice;
  float M = -3.402823e38;
  for (uint s = 0u; s < used; ++s) M = max(M, part[base + s * (p.L + 2u) + p.L]);
  float denom = 0.0;
  for (uint s = 0u; s < used; ++s) {
    const uint b = base + s * (p.L + 2u);
    denom += exp(part[b + p.L] - M) * part[b + p.L + 1u];
  }
  const float inv = 1.0 / denom;
  const uint ob = p.o0 + t * p.o_tok + h * p.o_head;
  for (uint i = gl_LocalInvocationID.x; i < p.L; i += 64u) {
    float v = 0.0;
    for (uint s = 0u; s < used; ++s) {
      const uint b = base + s * (p.L + 2u);
      v += exp(part[b + p.L] - M) * part[b + i];
    }
    o[ob + i] = v * inv;
  }
}
