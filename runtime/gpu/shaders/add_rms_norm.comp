#version 450
// The residual add and the next RMSNorm in one pass: x[r] += a[r] (x keeps the sum), then
// y[r][i] = x[r][i] / sqrt(mean(x[r]^2) + eps) * w[i]. One workgroup per row; a may live in
// host-visible memory (routed-expert output written by the CPU), y must not alias x or a.
layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer A { float a[]; };
layout(binding = 2) readonly buffer W { float w[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, x0, a0, w0, y0, x_stride, a_stride, y_stride; float eps; } p;
shared float partial[WG];
void main() {
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + r * p.x_stride, ab = p.a0 + r * p.a_stride, yb = p.y0 + r * p.y_stride;
  float s = 0.0;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x[xb + i] + a[ab + i];
    x[xb + i] = v;
    s += v * v;
  }
  partial[tid] = s;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] += partial[tid + k];
    barrier();
  }
  const float inv = inversesqrt(partial[0] / float(p.n) + p.eps);
  // Each thread reads back only the elements it wrote itself.
  for (uint i = tid; i < p.n; i += WG) y[yb + i] = x[xb + i] * inv * w[p.w0 + i];
}
