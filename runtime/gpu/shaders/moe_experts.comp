#version 450
#extension GL_GOOGLE_include_directive : require
// The two products of GPU-resident routed experts over the groups moe_route.comp built. A
// workgroup owns rows of one group's expert (grid y: the chunk's groups, grid x: row tiles) and
// runs them against the group's pairs, up to MAX_COLS at a time, so an expert's decoded weights
// serve every token routed to it.
//   GATE_UP: h[pos][r] = silu(gate_r . x[t]) * (up_r . x[t]),  t = pair_at[pos] / k_used
//            (a slot holds its gate rows, then its up rows, each K = hidden long)
//   else:    part[pos][r] = weight[pair] * (down_r . h[pos])
// Weights in a GGUF block format (dequant.glsl), read as matmul.comp reads them: threads walk a
// row in 4-element quarters of 32-element units. USE_SUBGROUP: each subgroup owns whole rows;
// otherwise one row per workgroup, reduced in shared memory.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 64u;
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MAX_COLS = 1u;  // pairs per pass over a row

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };  // GATE_UP: tokens' x; else h
layout(binding = 2) readonly buffer Route { uint route[]; };
layout(binding = 3) buffer Output { float y[]; };          // GATE_UP: h; else the weighted parts
#ifndef GATE_UP
layout(binding = 4) readonly buffer RouteWeights { float rw[]; };
#endif

layout(push_constant) uniform Push {
  uint K;            // elements per weight row
  uint rows;         // output rows per pair (GATE_UP: ffn; else hidden)
  uint row_bytes;    // bytes per weight row
  uint slot_bytes;   // bytes of one slot's matrices in this chunk's binding
  uint w_byte0;      // byte offset of the chunk's first slot within binding 0
  uint chunk;        // which chunk of slots this dispatch serves
  uint slot0;        // its first slot
  uint k_used;       // pairs per token
  uint x0;           // first float of the input within binding 1
  uint x_stride;     // floats between input columns (tokens or positions)
  uint route0, groups0, pair_at0;  // route layout (moe_route.comp)
  uint y0;           // first float of the output within binding 3
  uint rw0;          // first float of the routing weights within binding 4
  uint rows_per_wg;  // subgroup variant: rows per workgroup
} p;

// Lattice i-quants: their codebook follows the bindings above (runtime/gpu/codebooks.h).
#ifdef GATE_UP
#define CODEBOOK_BINDING 4
#else
#define CODEBOOK_BINDING 5
#endif
#include "dequant.glsl"

// Partial dots of one thread (quarters first, first + step, ...) of the row at byte `row`
// against input columns xcol[0 .. nc).
void accumulate(uint row, uint xcol[MAX_COLS], uint nc, uint first, uint step, inout float acc[MAX_COLS]) {
  const uint quarters = p.K / 4u;
  for (uint i = first; i < quarters; i += step) {
    const vec4 v = dequant4(row, i >> 3, i & 7u);
    for (uint c = 0u; c < MAX_COLS; ++c) {  // constant trip count: acc[] stays in registers
      if (c < nc) {
        const uint xb = xcol[c] + 4u * i;
        acc[c] += dot(v, vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]));
      }
    }
  }
#ifdef FLOAT_WEIGHT
  for (uint k = quarters * 4u + first; k < p.K; k += step) {  // rows not a multiple of 4 long
    const float v = dequant1(row, k);
    for (uint c = 0u; c < MAX_COLS; ++c)
      if (c < nc) acc[c] += v * x[xcol[c] + k];
  }
#endif
}

uint input_column(uint pos) {
#ifdef GATE_UP
  return p.x0 + (route[p.route0 + p.pair_at0 + pos] / p.k_used) * p.x_stride;
#else
  return p.x0 + pos * p.x_stride;
#endif
}

void store(uint pos, uint r, float s, float s_up) {
#ifdef GATE_UP
  y[p.y0 + pos * p.rows + r] = s / (1.0 + exp(-s)) * s_up;
#else
  y[p.y0 + pos * p.rows + r] = rw[p.rw0 + route[p.route0 + p.pair_at0 + pos]] * s;
#endif
}

// One pass over row r of the slot at byte `base` for the group's pairs j0 .. j0 + nc.
void row_pass(uint base, uint r, uint first_pos, uint j0, uint nc, uint lane, uint step, out float acc[MAX_COLS],
              out float acc_up[MAX_COLS]) {
  uint xcol[MAX_COLS];
  for (uint c = 0u; c < MAX_COLS; ++c) {
    xcol[c] = c < nc ? input_column(first_pos + j0 + c) : 0u;
    acc[c] = 0.0;
    acc_up[c] = 0.0;
  }
  accumulate(base + r * p.row_bytes, xcol, nc, lane, step, acc);
#ifdef GATE_UP
  accumulate(base + (p.rows + r) * p.row_bytes, xcol, nc, lane, step, acc_up);
#endif
}

#ifndef USE_SUBGROUP
shared float partial[MAX_COLS * WG];
shared float partial_up[MAX_COLS * WG];
#endif

void main() {
  const uint g_first = route[p.route0 + p.chunk], g_end = route[p.route0 + p.chunk + 1u];
  const uint g = g_first + gl_WorkGroupID.y;
  if (g >= g_end) return;  // uniform: fewer experts are active than the grid allows for
  const uint gi = p.route0 + p.groups0 + 3u * g;
  const uint base = p.w_byte0 + (route[gi] - p.slot0) * p.slot_bytes;
  const uint first_pos = route[gi + 1u], count = route[gi + 2u];
#ifdef USE_SUBGROUP
  const uint lane = gl_SubgroupInvocationID;
  for (uint rr = gl_SubgroupID; rr < p.rows_per_wg; rr += gl_NumSubgroups) {
    const uint r = gl_WorkGroupID.x * p.rows_per_wg + rr;
    if (r >= p.rows) break;  // uniform within the subgroup
    for (uint j0 = 0u; j0 < count; j0 += MAX_COLS) {
      const uint nc = min(MAX_COLS, count - j0);
      float acc[MAX_COLS], acc_up[MAX_COLS];
      row_pass(base, r, first_pos, j0, nc, lane, gl_SubgroupSize, acc, acc_up);
      for (uint c = 0u; c < MAX_COLS; ++c) {
        if (c < nc) {
          const float s = subgroupAdd(acc[c]);
#ifdef GATE_UP
          const float s_up = subgroupAdd(acc_up[c]);
#else
          const float s_up = 0.0;
#endif
          if (subgroupElect()) store(first_pos + j0 + c, r, s, s_up);
        }
      }
    }
  }
#else
  const uint r = gl_WorkGroupID.x;
  if (r >= p.rows) return;
  const uint tid = gl_LocalInvocationID.x;
  for (uint j0 = 0u; j0 < count; j0 += MAX_COLS) {
    const uint nc = min(MAX_COLS, count - j0);
    float acc[MAX_COLS], acc_up[MAX_COLS];
    row_pass(base, r, first_pos, j0, nc, tid, WG, acc, acc_up);
    for (uint c = 0u; c < MAX_COLS; ++c) {
      partial[c * WG + tid] = acc[c];
      partial_up[c * WG + tid] = acc_up[c];
    }
    barrier();
    for (uint stride = WG / 2u; stride > 0u; stride >>= 1) {
      if (tid < stride)
        for (uint c = 0u; c < nc; ++c) {
          partial[c * WG + tid] += partial[c * WG + tid + stride];
          partial_up[c * WG + tid] += partial_up[c * WG + tid + stride];
        }
      barrier();
    }
    if (tid < nc) store(first_pos + j0 + tid, r, partial[tid * WG], partial_up[tid * WG]);
    barrier();
  }
#endif
}
