#version 450
#extension GL_GOOGLE_include_directive : require
// out[t] = dequantized row ids[t] of a quantized table, for ids inside this dispatch's row range
// (tables larger than one binding are looked up range by range).
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint cols, row_bytes, w_byte0, row0, rows, ids0, o0, o_stride; } p;
#include "dequant.glsl"
void main() {
  const uint t = gl_WorkGroupID.x;
  const uint id = uint(ids[p.ids0 + t]);
  if (id < p.row0 || id >= p.row0 + p.rows) return;
  const uint row = p.w_byte0 + (id - p.row0) * p.row_bytes;
  for (uint u = gl_LocalInvocationID.x; u < p.cols / 32u; u += 64u) {
    float v[32];
    dequant_unit(row, u, v);
    for (uint i = 0u; i < 32u; ++i) o[p.o0 + t * p.o_stride + u * 32u + i] = v[i];
  }
}
