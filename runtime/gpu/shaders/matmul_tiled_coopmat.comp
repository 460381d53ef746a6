#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
// Tiled matrix-matrix product on cooperative matrices (tensor cores): y[c][r] (+)= sum_k W[r][k] x[c][k].
// A workgroup owns BM weight rows x BN input columns; per step of BK elements of k the weight tile is
// decoded once (dequant.glsl) to F16 in shared memory and the activation tile converted to F16 beside
// it, scaled per column by 1/scale[c] (a power of two from matmul_tiled_colscale, so that no column
// overflows F16); accumulation is F32 and the result is multiplied back by scale[c]. Subgroups are
// laid out SG_R x SG_C over the tile, each owning FR x FC fragments of the device's TM x TN shape.

layout(constant_id = 0) const uint BM = 64;    // weight rows per workgroup
layout(constant_id = 1) const uint BN = 64;    // input columns per workgroup
layout(constant_id = 2) const uint BK = 32;    // k per step, a multiple of 32 and of TK
layout(constant_id = 3) const uint TM = 16;    // cooperative matrix shape (M x K) * (K x N)
layout(constant_id = 4) const uint TN = 16;
layout(constant_id = 5) const uint TK = 16;
layout(constant_id = 6) const uint SG_R = 2;   // subgroups along rows
layout(constant_id = 7) const uint SG_C = 2;   // subgroups along columns
layout(constant_id = 8) const uint WG = 128;   // SG_R * SG_C * subgroup size
layout(local_size_x_id = 8) in;

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };
layout(binding = 2) buffer Output { float y[]; };
layout(binding = 3) readonly buffer Scales { float col_scale[]; };

layout(push_constant) uniform Push {
  uint K;             // elements per row
  uint rows;          // rows in this dispatch
  uint row_bytes;     // bytes per weight row
  uint w_byte0;       // byte offset of this dispatch's first row within binding 0
  uint n_cols;        // input columns
  uint x_col_stride;  // floats between input columns
  uint y_col_stride;  // floats between output columns
  uint y_row0;        // output index of this dispatch's first row
  uint accumulate;    // 1: add to y
  uint x0;            // index of x's first float within binding 1
  uint y0;            // index of y's first float within binding 2
} p;

#include "dequant.glsl"

const uint FR = BM / (SG_R * TM);  // fragments per subgroup along rows
const uint FC = BN / (SG_C * TN);  // and along columns
const uint LD = BK + 8u;           // padded k stride (16-byte multiple, staggers banks)

shared float16_t ws[BM * LD];            // row-major: W[r][k] at r * LD + k
shared float16_t xs[BN * LD];            // column-major B: x[c][k] at c * LD + k
shared float inv_scale[BN];
shared float stage[SG_R * SG_C * TM * TN];  // one fragment per subgroup on its way out

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint c0 = gl_WorkGroupID.y * BN;
  const uint sg = gl_SubgroupID;
  const uint sr = sg % SG_R, sc = sg / SG_R;
  const uint QPR = BK / 4u;

  for (uint i = tid; i < BN; i += WG) inv_scale[i] = c0 + i < p.n_cols ? 1.0 / col_scale[c0 + i] : 0.0;

  fcoopmatNV<32, gl_ScopeSubgroup, TM, TN> acc[FR * FC];
  for (uint i = 0u; i < FR * FC; ++i) acc[i] = fcoopmatNV<32, gl_ScopeSubgroup, TM, TN>(0.0);
  barrier();

  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    for (uint i = tid; i < BM * QPR; i += WG) {
      const uint rr = i / QPR, qi = i % QPR;
      const uint r = r0 + rr, k = k0 + 4u * qi;
      vec4 v = vec4(0.0);
      if (r < p.rows && k < p.K) {
        const uint row = p.w_byte0 + r * p.row_bytes;
#ifdef FLOAT_WEIGHT
        if (k + 4u <= p.K) {
          v = dequant4(row, k >> 5, (k >> 2) & 7u);
        } else {
          for (uint j = 0u; j < 4u; ++j)
            if (k + j < p.K) v[j] = dequant1(row, k + j);
        }
#else
        v = dequant4(row, k >> 5, (k >> 2) & 7u);
#endif
      }
      const uint o = rr * LD + 4u * qi;
      ws[o] = float16_t(v.x);
      ws[o + 1u] = float16_t(v.y);
      ws[o + 2u] = float16_t(v.z);
      ws[o + 3u] = float16_t(v.w);
    }
    for (uint i = tid; i < BN * BK; i += WG) {
      const uint cc = i / BK, kk = i % BK;
      const uint c = c0 + cc, k = k0 + kk;
      const float v = (c < p.n_cols && k < p.K) ? x[p.x0 + c * p.x_col_stride + k] * inv_scale[cc] : 0.0;
      xs[cc * LD + kk] = float16_t(v);
    }
    barrier();
    for (uint kk = 0u; kk < BK; kk += TK) {
      fcoopmatNV<16, gl_ScopeSubgroup, TK, TN> b[FC];
      for (uint j = 0u; j < FC; ++j)
        coopMatLoadNV(b[j], xs, ((sc * FC + j) * TN) * LD + kk, LD, true);
      for (uint i = 0u; i < FR; ++i) {
        fcoopmatNV<16, gl_ScopeSubgroup, TM, TK> a;
        coopMatLoadNV(a, ws, ((sr * FR + i) * TM) * LD + kk, LD, false);
        for (uint j = 0u; j < FC; ++j) acc[i * FC + j] = coopMatMulAddNV(a, b[j], acc[i * FC + j]);
      }
    }
    barrier();
  }

  // Out through a per-subgroup staging fragment (column-major, so lanes write neighbouring rows).
  const uint so = sg * TM * TN;
  for (uint i = 0u; i < FR; ++i) {
    for (uint j = 0u; j < FC; ++j) {
      coopMatStoreNV(acc[i * FC + j], stage, so, TM, true);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = gl_SubgroupInvocationID; e < TM * TN; e += gl_SubgroupSize) {
        const uint r = r0 + (sr * FR + i) * TM + e % TM;
        const uint c = c0 + (sc * FC + j) * TN + e / TM;
        if (r < p.rows && c < p.n_cols) {
          const float s = stage[so + e] * col_scale[c];
          const uint yi = p.y0 + c * p.y_col_stride + p.y_row0 + r;
          y[yi] = p.accumulate != 0u ? y[yi] + s : s;
        }
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
    }
  }
}
