#version 450
// out[i] = a[i] + b[i]
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint n, a0, b0, o0; } p;
void main() {
  const uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 256u) + gl_GlobalInvocationID.x;
  if (i < p.n) o[p.o0 + i] = a[p.a0 + i] + b[p.b0 + i];
}
