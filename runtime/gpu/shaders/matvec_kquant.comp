#version 450
#extension GL_GOOGLE_include_directive : require
// Decode-shaped products with K-quant weights: y[c][r] (+)= sum_k W[r][k] * x[c][k] for a few
// columns c. TPR threads share a row (WG / TPR rows per workgroup); each thread takes whole
// chunks of a super-block (dequant.glsl, KQ_CHUNKS): one 16-byte slice of quants read with wide
// loads, its scales decoded once, 32 or 64 values. Neighbouring threads take neighbouring chunks.
// INT8_DOT: x comes pre-quantized to 32-value int8 blocks (quantize_x8.comp) and each 4 values
// cost one packed 4x8 integer dot (SPV_KHR_integer_dot_product). Otherwise x is F32.
// USE_SUBGROUP: a row's threads sit in one subgroup and reduce with subgroup operations;
// otherwise through shared memory.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#ifdef INT8_DOT
#extension GL_EXT_spirv_intrinsics : require
// OpSDot (4450) with PackedVectorFormat4x8Bit (0); capabilities DotProduct (6019) and
// DotProductInput4x8BitPacked (6018). glslang 12 has no GL_EXT_integer_dot_product.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal uint fmt);
#endif

layout(constant_id = 0) const uint WG = 128u;
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MAX_COLS = 1u;  // columns per pass over the weights
layout(constant_id = 2) const uint TPR = 32u;      // threads per row (a power of two)

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 0) readonly buffer Weights4 { uvec4 w4[]; };
#ifdef INT8_DOT
layout(binding = 1) readonly buffer InputQ { uvec4 xq[]; };  // 2 per block: 32 int8
layout(binding = 3) readonly buffer InputD { vec4 xd[]; };   // per block: scale, sum of values 0-15, of 16-31
#else
layout(binding = 1) readonly buffer Input { vec4 x4[]; };
#endif
layout(binding = 2) buffer Output { float y[]; };

layout(push_constant) uniform Push {
  uint K;               // elements per row (a multiple of 256)
  uint rows;            // rows in this dispatch
  uint row_bytes;       // bytes per weight row
  uint w_byte0;         // byte offset of this dispatch's first row within binding 0
  uint n_cols;          // input columns
  uint x_col_stride;    // between input columns: floats (F32 x) or 32-blocks (INT8_DOT)
  uint x_group_rows;    // rows sharing one x segment
  uint x_group_stride;  // between x segments: floats or 32-blocks
  uint y_col_stride;    // floats between output columns
  uint y_row0;          // output index of this dispatch's first row
  uint x_row0;          // global row index of the first row (selects the x segment)
  uint accumulate;      // 1: add to y
  uint x0;              // F32 x: index of x's first float within binding 1 (a multiple of 4)
  uint y0;              // index of y's first float within binding 2
} p;

#define KQ_CHUNKS 1
#include "dequant.glsl"

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


// Chunk ci's runs (decoded by kq_chunk) against columns c0 .. c0 + nc - 1 of segment xseg.
void accumulate_chunk(uint ci, uint xseg, uint nc, KqRun run[KQ_RUNS], inout float acc[MAX_COLS]) {
  const uint sb = ci / KQ_CHUNKS_PER_BLOCK, t = ci % KQ_CHUNKS_PER_BLOCK;
  for (uint k = 0u; k < KQ_RUNS; ++k) {
    const uint e = sb * 256u + kq_run_elem(t, k);
    // Constant trip counts keep acc[] in registers.
    for (uint c = 0u; c < MAX_COLS; ++c) {
      if (c >= nc) break;
#ifdef INT8_DOT
      const uint blk = xseg + c * p.x_col_stride + (e >> 5);
      const uvec4 xv = xq[2u * blk + ((e >> 4) & 1u)];
      const int s = sdot4x8(run[k].q.x, xv.x, 0) + sdot4x8(run[k].q.y, xv.y, 0) + sdot4x8(run[k].q.z, xv.z, 0) +
                    sdot4x8(run[k].q.w, xv.w, 0);
      const vec4 d = xd[blk];
#ifdef KQ_NO_BIAS
      acc[c] += run[k].scale * d.x * float(s);
#else
      acc[c] += run[k].scale * d.x * float(s) + run[k].bias * ((e & 16u) != 0u ? d.z : d.y);
#endif
#else
      const uint xi = (p.x0 + xseg + c * p.x_col_stride + e) >> 2;
      const vec4 x0 = x4[xi], x1 = x4[xi + 1u], x2 = x4[xi + 2u], x3 = x4[xi + 3u];
      const float s = dot(sbytes4(run[k].q.x), x0) + dot(sbytes4(run[k].q.y), x1) +
                      dot(sbytes4(run[k].q.z), x2) + dot(sbytes4(run[k].q.w), x3);
#ifdef KQ_NO_BIAS
      acc[c] += run[k].scale * s;
#else
      acc[c] += run[k].scale * s + run[k].bias * dot(x0 + x1 + x2 + x3, vec4(1.0));
#endif
#endif
    }
  }
}

// This thread's share (chunks lane, lane + TPR, ...) of row r for columns c0 .. c0 + nc - 1.
// Two chunks per step: both are loaded before either is used, so a thread has twice the bytes in
// flight (small decode matrices give a thread only 2-4 chunks: latency, not bandwidth, bound).
void accumulate_row(uint r, uint lane, uint c0, uint nc, inout float acc[MAX_COLS]) {
  const uint row = p.w_byte0 + r * p.row_bytes;
  const uint xseg = ((p.x_row0 + r) / p.x_group_rows) * p.x_group_stride + c0 * p.x_col_stride;
  const uint chunks = (p.K / 256u) * KQ_CHUNKS_PER_BLOCK;
  for (uint ci = lane; ci < chunks; ci += 2u * TPR) {
    const uint cj = ci + TPR;
    const bool two = cj < chunks;
    const uint cb = two ? cj : ci;  // a valid chunk to load either way
    KqRun ra[KQ_RUNS], rb[KQ_RUNS];
    kq_chunk(row + (ci / KQ_CHUNKS_PER_BLOCK) * BLOCK_BYTES, ci % KQ_CHUNKS_PER_BLOCK, ra);
    kq_chunk(row + (cb / KQ_CHUNKS_PER_BLOCK) * BLOCK_BYTES, cb % KQ_CHUNKS_PER_BLOCK, rb);
    accumulate_chunk(ci, xseg, nc, ra, acc);
    if (two) accumulate_chunk(cj, xseg, nc, rb, acc);
  }
}

void store(uint r, uint c, float s) {
  const uint yi = p.y0 + c * p.y_col_stride + p.y_row0 + r;
  y[yi] = p.accumulate != 0u ? y[yi] + s : s;
}

const uint ROWS_PER_WG = WG / TPR;

#ifdef USE_SUBGROUP
void main() {
  const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  // Rows are dealt to groups of TPR lanes of a subgroup, whatever the subgroup size (>= TPR).
  const uint per_subgroup = gl_SubgroupSize / TPR;
  const uint lane = gl_SubgroupInvocationID % TPR;
  const uint slots = gl_NumSubgroups * per_subgroup;
  for (uint rr = gl_SubgroupID * per_subgroup + gl_SubgroupInvocationID / TPR; rr < ROWS_PER_WG; rr += slots) {
    const uint r = wg * ROWS_PER_WG + rr;
    if (r >= p.rows) break;  // uniform among a row's lanes
    for (uint c0 = 0u; c0 < p.n_cols; c0 += MAX_COLS) {
      const uint nc = min(MAX_COLS, p.n_cols - c0);
      float acc[MAX_COLS];
      for (uint c = 0u; c < MAX_COLS; ++c) acc[c] = 0.0;
      accumulate_row(r, lane, c0, nc, acc);
      for (uint c = 0u; c < MAX_COLS; ++c) {
        if (c >= nc) break;
        float s = acc[c];
        if (TPR == gl_SubgroupSize) {
          s = subgroupAdd(s);
        } else {
          for (uint off = TPR / 2u; off > 0u; off >>= 1) s += subgroupShuffleXor(s, off);
        }
        if (lane == 0u) store(r, c0 + c, s);
      }
    }
  }
}
#else
shared float partial[MAX_COLS * WG];

void main() {
  const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  const uint tid = gl_LocalInvocationID.x;
  const uint lane = tid % TPR;
  const uint r = wg * ROWS_PER_WG + tid / TPR;
  // Every thread reaches every barrier: threads past the last row only add zeros.
  for (uint c0 = 0u; c0 < p.n_cols; c0 += MAX_COLS) {
    const uint nc = min(MAX_COLS, p.n_cols - c0);
    float acc[MAX_COLS];
    for (uint c = 0u; c < MAX_COLS; ++c) acc[c] = 0.0;
    if (r < p.rows) accumulate_row(r, lane, c0, nc, acc);
    for (uint c = 0u; c < MAX_COLS; ++c) partial[c * WG + tid] = acc[c];
    barrier();
    for (uint stride = TPR / 2u; stride > 0u; stride >>= 1) {
      if (lane < stride)
        for (uint c = 0u; c < nc; ++c) partial[c * WG + tid] += partial[c * WG + tid + stride];
      barrier();
    }
    if (lane == 0u && r < p.rows)
      for (uint c = 0u; c < nc; ++c) store(r, c0 + c, partial[c * WG + tid]);
    barrier();
  }
}
#endif
