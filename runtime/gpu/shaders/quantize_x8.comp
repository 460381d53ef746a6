#version 450
// F32 activations to the int8 blocks matvec_kquant.comp (INT8_DOT) reads: per 32 values one
// scale d = max|x| / 127, the values round(x / d) as packed bytes, and the exact float sums of
// values 0-15 and 16-31 (the K-quant mins multiply them). One thread per block; block i is
// (column, x segment, block within the segment), segments as in matmul's x_group_stride.
layout(local_size_x = 64) in;

layout(binding = 0) readonly buffer Input { float x[]; };
layout(binding = 1) writeonly buffer OutQ { uvec4 xq[]; };
layout(binding = 2) writeonly buffer OutD { vec4 xd[]; };

layout(push_constant) uniform Push {
  uint blocks_per_segment;  // K / 32
  uint segments;            // x segments per column
  uint blocks;              // all blocks: columns * segments * blocks_per_segment
  uint x_col_stride;        // floats between columns
  uint x_segment_stride;    // floats between segments
  uint x0;                  // index of x's first float within binding 0
} p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u + gl_LocalInvocationID.x;
  if (i >= p.blocks) return;
  const uint kb = i % p.blocks_per_segment, seg = (i / p.blocks_per_segment) % p.segments;
  const uint col = i / (p.blocks_per_segment * p.segments);
  const uint base = p.x0 + col * p.x_col_stride + seg * p.x_segment_stride + 32u * kb;
  float v[32];
  float amax = 0.0, s0 = 0.0, s1 = 0.0;
  for (uint k = 0u; k < 32u; ++k) {
    v[k] = x[base + k];
    amax = max(amax, abs(v[k]));
    if (k < 16u) s0 += v[k]; else s1 += v[k];
  }
  const float d = amax / 127.0;
  const float inv = amax > 0.0 ? 127.0 / amax : 0.0;
  uint q[8];
  for (uint j = 0u; j < 8u; ++j) {
    uint word = 0u;
    for (uint b = 0u; b < 4u; ++b) {
      const int qi = clamp(int(round(v[4u * j + b] * inv)), -127, 127);
      word |= (uint(qi) & 0xffu) << (8u * b);
    }
    q[j] = word;
  }
  xq[2u * i] = uvec4(q[0], q[1], q[2], q[3]);
  xq[2u * i + 1u] = uvec4(q[4], q[5], q[6], q[7]);
  xd[i] = vec4(d, s0, s1, 0.0);
}
