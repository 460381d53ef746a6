#version 450
#extension GL_GOOGLE_include_directive : require
// y[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i]; one workgroup per row, y may alias x.
// Each thread loads its first CACHE elements of the row at once (a constant trip count: the loads are in
// flight together, not one latency after another) and keeps them for the output pass; rows
// longer than CACHE * WG read the rest twice.
layout(constant_id = 0) const uint WG = 512;
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, x0, w0, y0, x_stride, y_stride; float eps; } p;
#include "row_reduce.glsl"
const uint CACHE = 16u;
void main() {
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + r * p.x_stride, yb = p.y0 + r * p.y_stride;
  float v[CACHE];
  float s = 0.0;
  for (uint j = 0u; j < CACHE; ++j) {
    const uint i = tid + j * WG;
    v[j] = i < p.n ? x[xb + i] : 0.0;
    s += v[j] * v[j];
  }
  for (uint i = tid + CACHE * WG; i < p.n; i += WG) s += x[xb + i] * x[xb + i];
  const float inv = inversesqrt(row_sum(s) / float(p.n) + p.eps);
  for (uint j = 0u; j < CACHE; ++j) {
    const uint i = tid + j * WG;
    if (i < p.n) y[yb + i] = v[j] * inv * w[p.w0 + i];
  }
  for (uint i = tid + CACHE * WG; i < p.n; i += WG) y[yb + i] = x[xb + i] * inv * w[p.w0 + i];
}
