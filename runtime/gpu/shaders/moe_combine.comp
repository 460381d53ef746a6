#version 450
// out[t][r] (+)= sum over k of part[pos_of[t * k_used + k]][r], skipping pairs whose expert is
// not GPU-resident: the weighted outputs moe_experts.comp left per pair, summed per token in
// slot order k, so the result does not depend on how pairs were grouped.
layout(local_size_x = 64) in;

layout(binding = 0) readonly buffer Route { uint route[]; };
layout(binding = 1) readonly buffer Parts { float part[]; };
layout(binding = 2) buffer Output { float y[]; };

layout(push_constant) uniform Push {
  uint hidden, k_used, pos_of0, part0, y0, y_stride, accumulate;
} p;

const uint NONE = 0xffffffffu;

void main() {
  const uint r = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (r >= p.hidden) return;
  float s = 0.0;
  for (uint k = 0u; k < p.k_used; ++k) {
    const uint pos = route[p.pos_of0 + t * p.k_used + k];
    if (pos != NONE) s += part[p.part0 + pos * p.hidden + r];
  }
  const uint o = p.y0 + t * p.y_stride + r;
  y[o] = p.accumulate != 0u ? y[o] + s : s;
}
