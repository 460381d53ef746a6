#version 450
#extension GL_GOOGLE_include_directive : require
// Tiled matrix-matrix product for prefill: y[c][r] (+)= sum_k W[r][k] * x[c][k]. A workgroup owns
// BM weight rows x BN input columns. Per step of BK elements of k, the weight tile is decoded
// once into shared memory (dequant.glsl) and the activation tile staged beside it; each thread
// then accumulates a TM x TN block of outputs in registers. F32 throughout (works everywhere).

layout(constant_id = 0) const uint BM = 64;   // weight rows per workgroup
layout(constant_id = 1) const uint BN = 64;   // input columns per workgroup
layout(constant_id = 2) const uint BK = 32;   // k per step, a multiple of 32 (one decode unit)
layout(constant_id = 3) const uint TM = 4;    // rows per thread
layout(constant_id = 4) const uint TN = 4;    // columns per thread
layout(constant_id = 5) const uint WG = 256;  // (BM / TM) * (BN / TN)
layout(local_size_x_id = 5) in;

layout(binding = 0) readonly buffer Weights { uint w[]; };
layout(binding = 1) readonly buffer Input { float x[]; };
layout(binding = 2) buffer Output { float y[]; };

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
#define CODEBOOK_BINDING 3
#include "dequant.glsl"

// One padding float per k row keeps the transposed stores of the decode free of bank conflicts.
shared float ws[BK * (BM + 1)];  // [k][row]
shared float xs[BK * (BN + 1)];  // [k][column]

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint r0 = gl_WorkGroupID.x * BM;
  const uint c0 = gl_WorkGroupID.y * BN;
  const uint RT = BM / TM;  // threads along rows: neighbouring threads take neighbouring rows
  const uint ty = tid % RT, tx = tid / RT;
  const uint QPR = BK / 4u;  // quarters per row of a tile

  float acc[TM * TN];
  for (uint i = 0u; i < TM * TN; ++i) acc[i] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    // Weight tile: BM rows x BK elements, decoded 4 at a time.
    for (uint i = tid; i < BM * QPR; i += WG) {
      const uint rr = i / QPR, qi = i % QPR;
      const uint r = r0 + rr, k = k0 + 4u * qi;
      vec4 v = vec4(0.0);
      if (r < p.rows && k < p.K) {
        const uint row = p.w_byte0 + r * p.row_bytes;
#ifdef FLOAT_WEIGHT
        if (k + 4u <= p.K) {
          v = dequant4(row, k >> 5, (k >> 2) & 7u);
        } else {  // float rows of any length
          for (uint j = 0u; j < 4u; ++j)
            if (k + j < p.K) v[j] = dequant1(row, k + j);
        }
#else
        v = dequant4(row, k >> 5, (k >> 2) & 7u);
#endif
      }
      const uint kk = 4u * qi;
      ws[(kk + 0u) * (BM + 1u) + rr] = v.x;
      ws[(kk + 1u) * (BM + 1u) + rr] = v.y;
      ws[(kk + 2u) * (BM + 1u) + rr] = v.z;
      ws[(kk + 3u) * (BM + 1u) + rr] = v.w;
    }
    // Activation tile: BN columns x BK elements, neighbouring threads read neighbouring floats.
    for (uint i = tid; i < BN * BK; i += WG) {
      const uint cc = i / BK, kk = i % BK;
      const uint c = c0 + cc, k = k0 + kk;
      xs[kk * (BN + 1u) + cc] = (c < p.n_cols && k < p.K) ? x[p.x0 + c * p.x_col_stride + k] : 0.0;
    }
    barrier();
    for (uint kk = 0u; kk < BK; ++kk) {
      float a[TM], b[TN];
      for (uint i = 0u; i < TM; ++i) a[i] = ws[kk * (BM + 1u) + ty + i * RT];
      for (uint j = 0u; j < TN; ++j) b[j] = xs[kk * (BN + 1u) + tx + j * (BN / TN)];
      for (uint i = 0u; i < TM; ++i)
        for (uint j = 0u; j < TN; ++j) acc[i * TN + j] += a[i] * b[j];
    }
    barrier();
  }

  for (uint j = 0u; j < TN; ++j) {
    const uint c = c0 + tx + j * (BN / TN);
    if (c >= p.n_cols) continue;
    for (uint i = 0u; i < TM; ++i) {
      const uint r = r0 + ty + i * RT;
      if (r >= p.rows) continue;
      const uint yi = p.y0 + c * p.y_col_stride + p.y_row0 + r;
      y[yi] = p.accumulate != 0u ? y[yi] + acc[i * TN + j] : acc[i * TN + j];
    }
  }
}
