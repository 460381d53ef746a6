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
// row in 4-element quarters of 32-element units (float types; block types: a thread per unit).
// USE_SUBGROUP: each subgroup owns whole rows;
// otherwise one row per workgroup, reduced in shared memory.
// K-quants (Q2_K..Q6_K) take the chunked decoding of matvec_kquant.comp instead (KQ_CHUNKS in
// dequant.glsl): a thread decodes a 16-byte slice of quants with its scales once for 32-64
// values, where dequant4 decoded the super-block's scales again for every 4 values.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 64u;
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MAX_COLS = 1u;  // pairs per pass over a row

layout(binding = 0) readonly buffer Weights { uint w[]; };
#if defined(WEIGHT_Q2_K) || defined(WEIGHT_Q3_K) || defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K) || defined(WEIGHT_Q6_K)
#define KQ_CHUNKS 1
layout(binding = 0) readonly buffer Weights4 { uvec4 w4[]; };  // Q4_K/Q5_K: rows start 16-byte aligned
#endif
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

#ifdef KQ_CHUNKS
#if defined(WEIGHT_Q2_K)
const uint BLOCK_BYTES = 84u;
#elif defined(WEIGHT_Q3_K)
const uint BLOCK_BYTES = 110u;
#elif defined(WEIGHT_Q4_K)
const uint BLOCK_BYTES = 144u;
#elif defined(WEIGHT_Q5_K)
const uint BLOCK_BYTES = 176u;
#else
const uint BLOCK_BYTES = 210u;
#endif

// Chunk ci's runs against input columns xcol[0 .. nc).
void accumulate_chunk(uint ci, KqRun run[KQ_RUNS], uint xcol[MAX_COLS], uint nc, inout float acc[MAX_COLS]) {
  const uint sb = ci / KQ_CHUNKS_PER_BLOCK, t = ci % KQ_CHUNKS_PER_BLOCK;
  for (uint k = 0u; k < KQ_RUNS; ++k) {
    const uint e = sb * 256u + kq_run_elem(t, k);
    for (uint c = 0u; c < MAX_COLS; ++c) {  // constant trip count: acc[] stays in registers
      if (c < nc) {
        const uint xb = xcol[c] + e;
        const vec4 x0 = vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]);
        const vec4 x1 = vec4(x[xb + 4u], x[xb + 5u], x[xb + 6u], x[xb + 7u]);
        const vec4 x2 = vec4(x[xb + 8u], x[xb + 9u], x[xb + 10u], x[xb + 11u]);
        const vec4 x3 = vec4(x[xb + 12u], x[xb + 13u], x[xb + 14u], x[xb + 15u]);
        const float s = dot(sbytes4(run[k].q.x), x0) + dot(sbytes4(run[k].q.y), x1) +
                        dot(sbytes4(run[k].q.z), x2) + dot(sbytes4(run[k].q.w), x3);
#ifdef KQ_NO_BIAS
        acc[c] += run[k].scale * s;
#else
        acc[c] += run[k].scale * s + run[k].bias * dot(x0 + x1 + x2 + x3, vec4(1.0));
#endif
      }
    }
  }
}

// Partial dots of one thread (chunks first, first + step, ...) of the row at byte `row` against
// input columns xcol[0 .. nc); two chunks loaded per step before either is used (as in
// matvec_kquant.comp: a decode row gives a thread only a few chunks).
void accumulate(uint row, uint xcol[MAX_COLS], uint nc, uint first, uint step, inout float acc[MAX_COLS]) {
  const uint chunks = (p.K / 256u) * KQ_CHUNKS_PER_BLOCK;
  for (uint ci = first; ci < chunks; ci += 2u * step) {
    const uint cj = ci + step;
    const bool two = cj < chunks;
    const uint cb = two ? cj : ci;  // a valid chunk to load either way
    KqRun ra[KQ_RUNS], rb[KQ_RUNS];
    kq_chunk(row + (ci / KQ_CHUNKS_PER_BLOCK) * BLOCK_BYTES, ci % KQ_CHUNKS_PER_BLOCK, ra);
    kq_chunk(row + (cb / KQ_CHUNKS_PER_BLOCK) * BLOCK_BYTES, cb % KQ_CHUNKS_PER_BLOCK, rb);
    accumulate_chunk(ci, ra, xcol, nc, acc);
    if (two) accumulate_chunk(cj, rb, xcol, nc, acc);
  }
}
#elif defined(FLOAT_WEIGHT)
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
  for (uint k = quarters * 4u + first; k < p.K; k += step) {  // rows not a multiple of 4 long
    const float v = dequant1(row, k);
    for (uint c = 0u; c < MAX_COLS; ++c)
      if (c < nc) acc[c] += v * x[xcol[c] + k];
  }
}
#else
// Block types: a thread takes whole 32-element units (units first, first + step, ...), its 8
// quarters in one unrolled pass, so a unit's scale (and Q5's high bits) are loaded once, not once
// per 4 values as when neighbouring threads took neighbouring quarters.
void accumulate(uint row, uint xcol[MAX_COLS], uint nc, uint first, uint step, inout float acc[MAX_COLS]) {
  const uint units = p.K / 32u;
  for (uint u = first; u < units; u += step) {
    for (uint q = 0u; q < 8u; ++q) {
      const vec4 v = dequant4(row, u, q);
      for (uint c = 0u; c < MAX_COLS; ++c) {  // constant trip count: acc[] stays in registers
        if (c < nc) {
          const uint xb = xcol[c] + 32u * u + 4u * q;
          acc[c] += dot(v, vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]));
        }
      }
    }
  }
}
#endif

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
