#version 450
#extension GL_GOOGLE_include_directive : require
// y[c][r] (+)= sum_k W[r][k] * x[c][k] for up to MAX_COLS input columns c per pass, W in a GGUF
// block format (dequant.glsl). Threads walk a row in 4-element quarters of 32-element units, so
// neighbouring threads read neighbouring words of W and of x (coalesced).
// Plain variant: one workgroup per row, shared-memory reduction. Subgroup variant: each
// subgroup owns whole rows (no barriers). Rows may share one x segment per group of
// x_group_rows (per-head weights of MLA absorption).
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };
layout(binding = 2) buffer Output { float y[]; };

layout(push_constant) uniform Push {
  uint K;               // elements per row (a multiple of the block size)
  uint rows;            // rows in this dispatch
  uint row_bytes;       // bytes per weight row
  uint w_byte0;         // byte offset of this dispatch's first row within binding 0
  uint n_cols;          // input columns
  uint x_col_stride;    // floats between input columns
  uint x_group_rows;    // rows sharing one x segment
  uint x_group_stride;  // floats between x segments of consecutive row groups
  uint y_col_stride;    // floats between output columns
  uint y_row0;          // output index of this dispatch's first row
  uint x_row0;          // global row index of the first row (selects the x segment)
  uint accumulate;      // 1: add to y
  uint x0;              // index of x's first float within binding 1
  uint y0;              // index of y's first float within binding 2
  uint rows_per_wg;     // subgroup variant: rows per workgroup, one subgroup per row at a time
} p;

// Lattice i-quants: their codebook follows the bindings above (runtime/gpu/codebooks.h).
#define CODEBOOK_BINDING 3
#include "dequant.glsl"

// Input columns per pass (1 for decode keeps register pressure low); weights are decoded once
// per pass.
layout(constant_id = 1) const uint MAX_COLS = 8u;

// Partial dot products of one thread over quarters first, first+step, ... for columns c0..c0+nc.
void accumulate_quarters(uint row, uint xseg, uint c0, uint nc, uint first, uint step, inout float acc[MAX_COLS]) {
  const uint quarters = p.K / 4u;
  const uint xb0 = p.x0 + c0 * p.x_col_stride + xseg;
  for (uint i = first; i < quarters; i += step) {
    const vec4 v = dequant4(row, i >> 3, i & 7u);
    // Constant trip counts keep acc[] in registers (a dynamic bound would spill it).
    for (uint c = 0u; c < MAX_COLS; ++c) {
      if (c < nc) {
        const uint xb = xb0 + c * p.x_col_stride + 4u * i;
        acc[c] += dot(v, vec4(x[xb], x[xb + 1u], x[xb + 2u], x[xb + 3u]));
      }
    }
  }
#ifdef FLOAT_WEIGHT
  for (uint k = quarters * 4u + first; k < p.K; k += step) {  // rows not a multiple of 4 long
    const float v = dequant1(row, k);
    for (uint c = 0u; c < MAX_COLS; ++c)
      if (c < nc) acc[c] += v * x[xb0 + c * p.x_col_stride + k];
  }
#endif
}

void store(uint r, uint c, float s) {
  const uint yi = p.y0 + c * p.y_col_stride + p.y_row0 + r;
  y[yi] = p.accumulate != 0u ? y[yi] + s : s;
}

#ifdef USE_SUBGROUP
void main() {
  const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  const uint lane = gl_SubgroupInvocationID;
  // Robust to the actual subgroup size: subgroups take the workgroup's rows in turn.
  for (uint rr = gl_SubgroupID; rr < p.rows_per_wg; rr += gl_NumSubgroups) {
    const uint r = wg * p.rows_per_wg + rr;
    if (r >= p.rows) break;  // uniform within the subgroup
    const uint row = p.w_byte0 + r * p.row_bytes;
    const uint xseg = ((p.x_row0 + r) / p.x_group_rows) * p.x_group_stride;
    for (uint c0 = 0u; c0 < p.n_cols; c0 += MAX_COLS) {
      const uint nc = min(MAX_COLS, p.n_cols - c0);
      float acc[MAX_COLS];
      for (uint c = 0u; c < MAX_COLS; ++c) acc[c] = 0.0;
      accumulate_quarters(row, xseg, c0, nc, lane, gl_SubgroupSize, acc);
      for (uint c = 0u; c < MAX_COLS; ++c) {
        if (c < nc) {
          const float s = subgroupAdd(acc[c]);
          if (subgroupElect()) store(r, c0 + c, s);
        }
      }
    }
  }
}
#else
shared float partial[MAX_COLS * WG];

void main() {
  const uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (r >= p.rows) return;  // uniform across the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint row = p.w_byte0 + r * p.row_bytes;
  const uint xseg = ((p.x_row0 + r) / p.x_group_rows) * p.x_group_stride;
  for (uint c0 = 0u; c0 < p.n_cols; c0 += MAX_COLS) {
    const uint nc = min(MAX_COLS, p.n_cols - c0);
    float acc[MAX_COLS];
    for (uint c = 0u; c < MAX_COLS; ++c) acc[c] = 0.0;
    accumulate_quarters(row, xseg, c0, nc, tid, WG, acc);
    for (uint c = 0u; c < MAX_COLS; ++c)
      if (c < nc) partial[c * WG + tid] = acc[c];
    barrier();
    for (uint stride = WG / 2u; stride > 0u; stride >>= 1) {
      if (tid < stride)
        for (uint c = 0u; c < nc; ++c) partial[c * WG + tid] += partial[c * WG + tid + stride];
      barrier();
    }
    if (tid < nc) store(r, c0 + tid, partial[tid * WG]);
    barrier();
  }
}
#endif
