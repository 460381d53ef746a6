#version 450
// y[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i]; one workgroup per row, y may alias x.
layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, x0, w0, y0, x_stride, y_stride; float eps; } p;
shared float partial[WG];
void main() {
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + r * p.x_stride, yb = p.y0 + r * p.y_stride;
  float s = 0.0;
  for (uint i = tid; i < p.n; i += WG) s += x[xb + i] * x[xb + i];
  partial[tid] = s;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] += partial[tid + k];
    barrier();
  }
  const float inv = inversesqrt(partial[0] / float(p.n) + p.eps);
  for (uint i = tid; i < p.n; i += WG) y[yb + i] = x[xb + i] * inv * w[p.w0 + i];
}
