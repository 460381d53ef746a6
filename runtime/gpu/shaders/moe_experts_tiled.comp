#version 450
#extension GL_GOOGLE_include_directive : require
// The two products of GPU-resident routed experts for prompts: a grouped GEMM over the groups
// moe_route.comp built. The same products as moe_experts.comp:
//   GATE_UP: h[pos][r] = silu(gate_r . x[t]) * (up_r . x[t]),  t = pair_at[pos] / k_used
//   else:    part[pos][r] = weight[pair] * (down_r . h[pos])
// but a workgroup owns BM rows of one group's expert (grid x: row tiles, y: the chunk's groups)
// times BN of the group's pairs (grid z: column tiles, looping when a group has more pairs than
// the grid allows for), and per step of BK elements decodes its weight tile (GATE_UP: the gate and
// the up tile) once into shared memory beside the gathered activation tile; each thread keeps a
// TM x TN block of sums in registers. So an expert's weights are decoded once per BN pairs, not
// once per 16, and every decoded value serves TN pairs from registers. F32 throughout.

layout(constant_id = 0) const uint BM = 64;   // weight rows per workgroup
layout(constant_id = 1) const uint BN = 64;   // pairs per workgroup
layout(constant_id = 2) const uint BK = 32;   // k per step, a multiple of 32 (one decode unit)
layout(constant_id = 3) const uint TM = 4;    // rows per thread
layout(constant_id = 4) const uint TN = 4;    // pairs per thread
layout(constant_id = 5) const uint WG = 256;  // (BM / TM) * (BN / TN)
layout(local_size_x_id = 5) in;

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };  // GATE_UP: tokens' x; else h
layout(binding = 2) readonly buffer Route { uint route[]; };
layout(binding = 3) buffer Output { float y[]; };          // GATE_UP: h; else the weighted parts
#ifndef GATE_UP
layout(binding = 4) readonly buffer RouteWeights { float rw[]; };
#endif

// The push constants of moe_experts.comp (rows_per_wg unused here).
layout(push_constant) uniform Push {
  uint K, rows, row_bytes, slot_bytes, w_byte0, chunk, slot0, k_used, x0, x_stride, route0, groups0, pair_at0, y0,
      rw0, rows_per_wg;
} p;

#ifdef GATE_UP
#define CODEBOOK_BINDING 4
#else
#define CODEBOOK_BINDING 5
#endif
#include "dequant.glsl"

const uint NONE = 0xffffffffu;
shared float ws[BK * (BM + 1)];  // [k][row]; one padding float per k row: no bank conflicts
#ifdef GATE_UP
shared float wu[BK * (BM + 1)];
#endif
shared float xs[BK * (BN + 1)];  // [k][pair]
shared uint xcol[BN];            // first input float of each pair of the tile, NONE past the group

vec4 decode4(uint row, uint k) {
#ifdef FLOAT_WEIGHT
  if (k + 4u > p.K) {  // float rows of any length
    vec4 v = vec4(0.0);
    for (uint j = 0u; j < 4u; ++j)
      if (k + j < p.K) v[j] = dequant1(row, k + j);
    return v;
  }
#endif
  return dequant4(row, k >> 5, (k >> 2) & 7u);
}

void main() {
  const uint g_first = route[p.route0 + p.chunk], g_end = route[p.route0 + p.chunk + 1u];
  const uint g = g_first + gl_WorkGroupID.y;
  if (g >= g_end) return;  // uniform: fewer experts are active than the grid allows for
  const uint gi = p.route0 + p.groups0 + 3u * g;
  const uint base = p.w_byte0 + (route[gi] - p.slot0) * p.slot_bytes;
  const uint first_pos = route[gi + 1u], count = route[gi + 2u];
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint RT = BM / TM;  // threads along rows: neighbouring threads take neighbouring rows
  const uint ty = tid % RT, tx = tid / RT;
  const uint QPR = BK / 4u;  // quarters per row of a tile

  for (uint c0 = gl_WorkGroupID.z * BN; c0 < count; c0 += gl_NumWorkGroups.z * BN) {  // uniform
    for (uint c = tid; c < BN; c += WG) {
      const uint pos = first_pos + c0 + c;
#ifdef GATE_UP
      xcol[c] = c0 + c < count ? p.x0 + (route[p.route0 + p.pair_at0 + pos] / p.k_used) * p.x_stride : NONE;
#else
      xcol[c] = c0 + c < count ? p.x0 + pos * p.x_stride : NONE;
#endif
    }
    float acc[TM * TN];
#ifdef GATE_UP
    float acc_up[TM * TN];
#endif
    for (uint i = 0u; i < TM * TN; ++i) {
      acc[i] = 0.0;
#ifdef GATE_UP
      acc_up[i] = 0.0;
#endif
    }
    barrier();  // xcol is written

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
      for (uint i = tid; i < BM * QPR; i += WG) {
        const uint rr = i / QPR, qi = i % QPR;
        const uint r = r0 + rr, k = k0 + 4u * qi;
        vec4 v = vec4(0.0);
#ifdef GATE_UP
        vec4 u = vec4(0.0);
#endif
        if (r < p.rows && k < p.K) {
          v = decode4(base + r * p.row_bytes, k);
#ifdef GATE_UP
          u = decode4(base + (p.rows + r) * p.row_bytes, k);
#endif
        }
        const uint kk = 4u * qi;
        for (uint j = 0u; j < 4u; ++j) {
          ws[(kk + j) * (BM + 1u) + rr] = v[j];
#ifdef GATE_UP
          wu[(kk + j) * (BM + 1u) + rr] = u[j];
#endif
        }
      }
      // Activation tile: neighbouring threads read neighbouring floats of one pair's input.
      for (uint i = tid; i < BN * BK; i += WG) {
        const uint cc = i / BK, kk = i % BK;
        const uint col = xcol[cc], k = k0 + kk;
        xs[kk * (BN + 1u) + cc] = (col != NONE && k < p.K) ? x[col + k] : 0.0;
      }
      barrier();
      for (uint kk = 0u; kk < BK; ++kk) {
        float a[TM], b[TN];
#ifdef GATE_UP
        float au[TM];
#endif
        for (uint i = 0u; i < TM; ++i) {
          a[i] = ws[kk * (BM + 1u) + ty + i * RT];
#ifdef GATE_UP
          au[i] = wu[kk * (BM + 1u) + ty + i * RT];
#endif
        }
        for (uint j = 0u; j < TN; ++j) b[j] = xs[kk * (BN + 1u) + tx + j * (BN / TN)];
        for (uint i = 0u; i < TM; ++i)
          for (uint j = 0u; j < TN; ++j) {
            acc[i * TN + j] += a[i] * b[j];
#ifdef GATE_UP
            acc_up[i * TN + j] += au[i] * b[j];
#endif
          }
      }
      barrier();
    }

    for (uint j = 0u; j < TN; ++j) {
      const uint c = c0 + tx + j * (BN / TN);
      if (c >= count) continue;
      const uint pos = first_pos + c;
      for (uint i = 0u; i < TM; ++i) {
        const uint r = r0 + ty + i * RT;
        if (r >= p.rows) continue;
        const float s = acc[i * TN + j];
#ifdef GATE_UP
        y[p.y0 + pos * p.rows + r] = s / (1.0 + exp(-s)) * acc_up[i * TN + j];
#else
        y[p.y0 + pos * p.rows + r] = rw[p.rw0 + route[p.route0 + p.pair_at0 + pos]] * s;
#endif
      }
    }
    barrier();  // xcol is rewritten for the next tile
  }
}
