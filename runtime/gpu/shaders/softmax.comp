#version 450
// y[r] = softmax(scale * x[r]) over n columns; one workgroup per row, y may alias x.
layout(constant_id = 0) const uint WG = 128;
layout(local_size_x_id = 0) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint n, x0, y0, x_stride, y_stride; float scale; } p;
shared float partial[WG];
void main() {
  const uint r = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  const uint xb = p.x0 + r * p.x_stride, yb = p.y0 + r * p.y_stride;
  float m = -3.402823e38;
  for (uint i = tid; i < p.n; i += WG) m = max(m, p.scale * x[xb + i]);
  partial[tid] = m;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] = max(partial[tid], partial[tid + k]);
    barrier();
  }
  m = partial[0];
  barrier();
  float s = 0.0;
  for (uint i = tid; i < p.n; i += WG) s += exp(p.scale * x[xb + i] - m);
  partial[tid] = s;
  barrier();
  for (uint k = WG / 2u; k > 0u; k >>= 1) {
    if (tid < k) partial[tid] += partial[tid + k];
    barrier();
  }
  const float inv = 1.0 / partial[0];
  for (uint i = tid; i < p.n; i += WG) y[yb + i] = exp(p.scale * x[xb + i] - m) * inv;
}
