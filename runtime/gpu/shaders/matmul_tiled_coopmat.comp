#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
// Tiled matrix-matrix product on cooperative matrices (tensor cores): y[c][r] (+)= sum_k W[r][k] x[c][k].
// A workgroup owns BM weight rows x BN input columns; per step of BK elements of k the weight tile is
// decoded once (dequant.glsl) to F16 and the activation tile converted to F16 beside it, scaled per
// column by 1/scale[c] (a power of two from matmul_tiled_colscale, so that no column overflows F16);
// accumulation is F32 and the result is multiplied back by scale[c]. Subgroups are laid out
// SG_R x SG_C over the tile, each owning FR x FC fragments of the device's TM x TN shape, so every
// loaded A fragment serves FC products and every B fragment FR.
// Two shared-memory stages: while the subgroups multiply stage s, each thread already holds the
// next step's quads in registers (global loads in flight under the MMAs) and writes them to
// stage s ^ 1 afterwards, packed four halves (8 bytes) per store; one barrier per step.

layout(constant_id = 0) const uint BM = 64;    // weight rows per workgroup
layout(constant_id = 1) const uint BN = 128;   // input columns per workgroup
layout(constant_id = 2) const uint BK = 32;    // k per step, a multiple of 32 and of TK
layout(constant_id = 3) const uint TM = 16;    // cooperative matrix shape (M x K) * (K x N)
layout(constant_id = 4) const uint TN = 16;
layout(constant_id = 5) const uint TK = 16;
layout(constant_id = 6) const uint SG_R = 2;   // subgroups along rows
layout(constant_id = 7) const uint SG_C = 4;   // subgroups along columns
layout(constant_id = 8) const uint WG = 256;   // SG_R * SG_C * subgroup size
layout(local_size_x_id = 8) in;

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };
layout(binding = 1) readonly buffer InputQuads { vec4 x4[]; };  // the same input, 16 bytes at a time
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

// Lattice i-quants: their codebook follows the bindings above (runtime/gpu/codebooks.h).
#define CODEBOOK_BINDING 4
#include "dequant.glsl"

const uint FR = BM / (SG_R * TM);  // fragments per subgroup along rows
const uint FC = BN / (SG_C * TN);  // and along columns
const uint QPR = BK / 4u;          // quads (4 halves, one uvec2) per tile row
const uint LDQ = QPR + 2u;         // padded row stride in quads: (BK + 8) halves, staggers banks
const uint WQ = BM * QPR;          // quads per weight tile
const uint XQ = BN * QPR;          // quads per activation tile
const uint WPT = (WQ + WG - 1u) / WG;  // weight quads per thread and step
const uint XPT = (XQ + WG - 1u) / WG;  // activation quads per thread and step

shared uvec2 ws[2u * BM * LDQ];  // per stage row-major: W[r][k] at quad r * LDQ + k / 4
shared uvec2 xs[2u * BN * LDQ];  // per stage column-major B: x[c][k] at quad c * LDQ + k / 4
shared float inv_scale[BN];
shared float stage[SG_R * SG_C * TM * TN];  // one fragment per subgroup on its way out

uvec2 wreg[WPT];  // the next step's decoded weight quads, between global loads and shared stores
vec4 xreg[XPT];   // and its raw activation quads (converted after the multiplies: loads stay in flight)

uvec2 pack4(vec4 v) { return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw)); }

// Decodes the weights of the step starting at k0 into wreg, loads its activations into xreg.
void fetch(uint k0, uint r0, uint c0, bool x_quads) {
  const uint tid = gl_LocalInvocationID.x;
  for (uint j = 0u; j < WPT; ++j) {
    const uint i = tid + j * WG;
    const uint rr = i / QPR, k = k0 + 4u * (i % QPR);
    const uint r = r0 + rr;
    vec4 v = vec4(0.0);
    if (i < WQ && r < p.rows && k < p.K) {
      const uint row = p.w_byte0 + r * p.row_bytes;
#ifdef FLOAT_WEIGHT
      if (k + 4u <= p.K) {
        v = dequant4(row, k >> 5, (k >> 2) & 7u);
      } else {
        for (uint e = 0u; e < 4u; ++e)
          if (k + e < p.K) v[e] = dequant1(row, k + e);
      }
#else
      v = dequant4(row, k >> 5, (k >> 2) & 7u);  // K is a multiple of the block size (>= 32)
#endif
    }
    wreg[j] = pack4(v);
  }
  for (uint j = 0u; j < XPT; ++j) {
    const uint i = tid + j * WG;
    const uint cc = i / QPR, k = k0 + 4u * (i % QPR);
    const uint c = c0 + cc;
    vec4 v = vec4(0.0);
    if (i < XQ && c < p.n_cols && k < p.K) {
      const uint e = p.x0 + c * p.x_col_stride + k;
      if (x_quads) {
        v = x4[e >> 2];
      } else {
        for (uint t = 0u; t < 4u; ++t)
          if (k + t < p.K) v[t] = x[e + t];
      }
    }
    xreg[j] = v;
  }
}

void store(uint s) {
  const uint tid = gl_LocalInvocationID.x;
  for (uint j = 0u; j < WPT; ++j) {
    const uint i = tid + j * WG;
    if (i < WQ) ws[s * BM * LDQ + (i / QPR) * LDQ + i % QPR] = wreg[j];
  }
  for (uint j = 0u; j < XPT; ++j) {
    const uint i = tid + j * WG;
    if (i < XQ) xs[s * BN * LDQ + (i / QPR) * LDQ + i % QPR] = pack4(xreg[j] * inv_scale[i / QPR]);
  }
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint c0 = gl_WorkGroupID.y * BN;
  const uint sg = gl_SubgroupID;
  const uint sr = sg % SG_R, sc = sg / SG_R;
  // 16-byte activation loads where every quad starts on a 16-byte boundary (binding offsets are).
  const bool x_quads = ((p.x0 | p.x_col_stride | p.K) & 3u) == 0u;

  for (uint i = tid; i < BN; i += WG) inv_scale[i] = c0 + i < p.n_cols ? 1.0 / col_scale[c0 + i] : 0.0;

  fcoopmatNV<32, gl_ScopeSubgroup, TM, TN> acc[FR * FC];
  for (uint i = 0u; i < FR * FC; ++i) acc[i] = fcoopmatNV<32, gl_ScopeSubgroup, TM, TN>(0.0);
  barrier();
  fetch(0u, r0, c0, x_quads);
  store(0u);
  barrier();

  uint s = 0u;
  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    const bool more = k0 + BK < p.K;  // uniform: the barrier below stays in uniform control flow
    if (more) fetch(k0 + BK, r0, c0, x_quads);
    const uint wb = s * BM * LDQ + sr * FR * TM * LDQ;
    const uint xb = s * BN * LDQ + sc * FC * TN * LDQ;
    for (uint kq = 0u; kq < QPR; kq += TK / 4u) {
      fcoopmatNV<16, gl_ScopeSubgroup, TK, TN> b[FC];
      for (uint j = 0u; j < FC; ++j) coopMatLoadNV(b[j], xs, xb + j * TN * LDQ + kq, LDQ, true);
      for (uint i = 0u; i < FR; ++i) {
        fcoopmatNV<16, gl_ScopeSubgroup, TM, TK> a;
        coopMatLoadNV(a, ws, wb + i * TM * LDQ + kq, LDQ, false);
        for (uint j = 0u; j < FC; ++j) acc[i * FC + j] = coopMatMulAddNV(a, b[j], acc[i * FC + j]);
      }
    }
    if (more) store(s ^ 1u);
    barrier();
    s ^= 1u;
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
          const float v = stage[so + e] * col_scale[c];
          const uint yi = p.y0 + c * p.y_col_stride + p.y_row0 + r;
          y[yi] = p.accumulate != 0u ? y[yi] + v : v;
        }
      }
      subgroupMemoryBarrierShared();
      subgroupBarrier();
    }
  }
}
