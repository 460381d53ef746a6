#version 450
#extension GL_GOOGLE_include_directive : require
// The residual add and the next RMSNorm in one pass: x[r] += a[r] (x keeps the sum), then
// y[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i]. One workgroup per row; a may live in
// host-visible memory (routed-expert output written by the CPU), y must not alias x or a.
// Loads as in rms_norm.comp: the first CACHE sums per thread stay in registers.
layout(constant_id = 0) const uint WG = 512;
layout(local_size_x_id = 0) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer A { float a[]; };
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, x0, a0, w0, y0, x_stride, a_stride, y_stride; float eps; } p;
#include "row_reduce.glsl"
const uint CACHE = 16u;
void main() {
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + r * p.x_stride, ab = p.a0 + r * p.a_stride, yb = p.y0 + r * p.y_stride;
  float v[CACHE];
  float s = 0.0;
  for (uint j = 0u; j < CACHE; ++j) {
    const uint i = tid + j * WG;
    v[j] = i < p.n ? x[xb + i] + a[ab + i] : 0.0;
  }
  for (uint j = 0u; j < CACHE; ++j) {
    const uint i = tid + j * WG;
    if (i < p.n) x[xb + i] = v[j];
    s += v[j] * v[j];
  }
  for (uint i = tid + CACHE * WG; i < p.n; i += WG) {
    const float u = x[xb + i] + a[ab + i];
    x[xb + i] = u;
    s += u * u;
  }
  const float inv = inversesqrt(row_sum(s) / float(p.n) + p.eps);
  for (uint j = 0u; j < CACHE; ++j) {
    const uint i = tid + j * WG;
    if (i < p.n) y[yb + i] = v[j] * inv * w[p.w0 + i];
  }
  // Each thread reads back only the elements it wrote itself.
  for (uint i = tid + CACHE * WG; i < p.n; i += WG) y[yb + i] = x[xb + i] * inv * w[p.w0 + i];
}
