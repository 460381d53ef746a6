#version 450
#extension GL_GOOGLE_include_directive : require
// y[c][r] (+)= sum_k W[r][k] * x[c][k] for up to 8 input columns c per pass, W in a GGUF block
// format (dequant.glsl). One workgroup per row; threads stride over 32-element units.
// Rows may share one x segment per group of x_group_rows (per-head weights of MLA absorption).
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
  uint K;               // elements per row (multiple of 32)
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
} p;

#include "dequant.glsl"

const uint MAX_COLS = 8u;
#ifdef USE_SUBGROUP
shared float partial[MAX_COLS * 32u];
#else
shared float partial[MAX_COLS * WG];
#endif

void main() {
  const uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (r >= p.rows) return;  // uniform across the workgroup
  const uint tid = gl_LocalInvocationID.x;
  const uint row = p.w_byte0 + r * p.row_bytes;
  const uint xseg = ((p.x_row0 + r) / p.x_group_rows) * p.x_group_stride;
  const uint units = p.K / 32u;

  for (uint c0 = 0u; c0 < p.n_cols; c0 += MAX_COLS) {
    const uint nc = min(MAX_COLS, p.n_cols - c0);
    float acc[MAX_COLS];
    for (uint c = 0u; c < MAX_COLS; ++c) acc[c] = 0.0;
    for (uint u = tid; u < units; u += WG) {
      float v[32];
      dequant_unit(row, u, v);
      // Constant trip counts keep acc[] and v[] in registers (a dynamic bound would spill them).
      for (uint c = 0u; c < MAX_COLS; ++c) {
        if (c < nc) {
          const uint xb = p.x0 + (c0 + c) * p.x_col_stride + xseg + u * 32u;
          float s = 0.0;
          for (uint i = 0u; i < 32u; ++i) s += v[i] * x[xb + i];
          acc[c] += s;
        }
      }
    }
#ifdef USE_SUBGROUP
    for (uint c = 0u; c < MAX_COLS; ++c) {
      if (c < nc) {
        const float t = subgroupAdd(acc[c]);
        if (subgroupElect()) partial[c * 32u + gl_SubgroupID] = t;
      }
    }
    barrier();
    if (tid < nc) {
      float s = 0.0;
      for (uint g = 0u; g < gl_NumSubgroups; ++g) s += partial[tid * 32u + g];
      const uint yi = p.y0 + (c0 + tid) * p.y_col_stride + p.y_row0 + r;
      y[yi] = p.accumulate != 0u ? y[yi] + s : s;
    }
    barrier();
#else
    for (uint c = 0u; c < MAX_COLS; ++c)
      if (c < nc) partial[c * WG + tid] = acc[c];
    barrier();
    for (uint stride = WG / 2u; stride > 0u; stride >>= 1) {
      if (tid < stride)
        for (uint c = 0u; c < nc; ++c) partial[c * WG + tid] += partial[c * WG + tid + stride];
      barrier();
    }
    if (tid < nc) {
      const uint yi = p.y0 + (c0 + tid) * p.y_col_stride + p.y_row0 + r;
      const float s = partial[tid * WG];
      y[yi] = p.accumulate != 0u ? y[yi] + s : s;
    }
    barrier();
#endif
  }
}
