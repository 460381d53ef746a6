#version 450
// Appends tokens to one layer of the latent KV cache: row pos[t] = [c_kv (L) | k_pe (R)] as F16
// (or BF16 with KV_BF16, see kv_format.glsl).
#extension GL_GOOGLE_include_directive : require
#include "kv_format.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Ckv { float ckv[]; };
layout(binding = 1) readonly buffer Kpe { float kpe[]; };
layout(binding = 2) readonly buffer Pos { int pos[]; };
layout(binding = 3) buffer Cache { uint cache[]; };  // element pairs (kv_format.glsl)
layout(push_constant) uniform Push {
  uint L, R, ckv0, ckv_stride, kpe0, kpe_stride, pos0, row_words, max_rows;
} p;
void main() {
  const uint t = gl_WorkGroupID.x;
  const uint row = uint(pos[p.pos0 + t]);
  if (row >= p.max_rows) return;  // the host checks positions; never write outside the cache
  const uint half_l = p.L / 2u;
  for (uint w = gl_LocalInvocationID.x; w < half_l + p.R / 2u; w += 64u) {
    vec2 v;
    if (w < half_l) {
      const uint b = p.ckv0 + t * p.ckv_stride + 2u * w;
      v = vec2(ckv[b], ckv[b + 1u]);
    } else {
      const uint b = p.kpe0 + t * p.kpe_stride + 2u * (w - half_l);
      v = vec2(kpe[b], kpe[b + 1u]);
    }
    cache[row * p.row_words + w] = pack_kv(v);
  }
}
