#version 450
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)); rows of n with their own strides
// so that gate and up may be the two halves of one fused projection.
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer Gate { float g[]; };
layout(binding = 1) readonly buffer Up { float u[]; };
layout(binding = 2) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint n, rows, g0, u0, o0, g_stride, u_stride, o_stride; } p;
void main() {
  const uint i = gl_GlobalInvocationID.x;
  const uint r = gl_GlobalInvocationID.y;
  if (i >= p.n || r >= p.rows) return;
  const float gv = g[p.g0 + r * p.g_stride + i];
  o[p.o0 + r * p.o_stride + i] = gv / (1.0 + exp(-gv)) * u[p.u0 + r * p.u_stride + i];
}
