#version 450
#extension GL_GOOGLE_include_directive : require
// out[t] = dequantized row ids[t] of a quantized table, for ids inside this dispatch's row range
// (tables larger than one binding are looked up range by range).
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) buffer Out { float o[]; };
layout(push_constant) uniform Push { uint cols, row_bytes, w_byte0, row0, rows, ids0, o0, o_stride; } p;
// Lattice i-quants: their codebook follows the bindings above (runtime/gpu/codebooks.h).
#define CODEBOOK_BINDING 3
#include "dequant.glsl"
void main() {
  const uint t = gl_WorkGroupID.x;
  const uint id = uint(ids[p.ids0 + t]);
  if (id < p.row0 || id >= p.row0 + p.rows) return;
  const uint row = p.w_byte0 + (id - p.row0) * p.row_bytes;
  const uint ob = p.o0 + t * p.o_stride;
  for (uint i = gl_LocalInvocationID.x; i < p.cols / 4u; i += 64u) {
    const vec4 v = dequant4(row, i >> 3, i & 7u);
    for (uint j = 0u; j < 4u; ++j) o[ob + 4u * i + j] = v[j];
  }
#ifdef FLOAT_WEIGHT
  for (uint k = (p.cols & ~3u) + gl_LocalInvocationID.x; k < p.cols; k += 64u) o[ob + k] = dequant1(row, k);
#endif
}
