#version 450
// Absorbed multi-head latent attention for a group of G rows per workgroup, a row being one
// (query token, head) pair: r = t * n_head + h. All heads and all queries read the same latent
// cache, so the workgroup stages a tile of T cache rows [c_kv (L) | k_pe (R)] in shared memory
// once and uses it for its G rows (decode: G heads of the token; prefill: G consecutive rows,
// which may span tokens when G does not divide n_head):
//   s[g][j] = scale * (q_lat[g] . c_kv[j] + q_pe[g] . k_pe[j])   for j <= pos[t(g)]  (causal per row)
//   o_lat[g] = sum_j softmax_j(s[g]) c_kv[j]                      (online softmax over tiles)
// Scores: each thread computes a 2 rows x 4 keys block over every SPLIT-th 4-element chunk of
// the row, its 2 x 9 query chunks held in registers; the SPLIT partial sums meet in shared
// memory (28 KiB in all, so that 32 KiB devices such as lavapipe run it too). Output: each thread owns 2 rows x two
// 4-element chunks of o_lat (L <= 512), so a key costs it 2 P reads, 2 cache reads, 16 FMAs.
// Long contexts are split (flash-decoding): workgroup z takes the z-th of n_split slices of keys
// 0..max_g pos and, when n_split > 1, writes per row its unnormalised partial (o, max, sum) to
// `part` for mla_combine.comp (sum = 0 marks a row with no key in the slice).
#extension GL_GOOGLE_include_directive : require
#include "kv_format.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer QLat { float q_lat[]; };
layout(binding = 1) readonly buffer QPe { float q_pe[]; };
layout(binding = 2) readonly buffer Cache { uint cache[]; };
layout(binding = 3) readonly buffer Pos { int pos[]; };
layout(binding = 4) buffer Out { float o[]; };
layout(binding = 5) buffer Part { float part[]; };  // [row][split]: L floats of o, then max, sum
layout(push_constant) uniform Push {
  uint L, R, ql0, ql_tok, ql_head, qp0, qp_tok, qp_head, pos0, o0, o_tok, o_head;
  float scale;
  uint n_split, n_head, n_rows;
} p;

const uint WG = 256u;
const uint G = 8u;           // rows per workgroup
const uint T = 16u;          // keys per tile
const uint MAX_C = 144u;     // 4-element chunks of a cache row: L + R <= 576
const uint SPLIT = 16u;      // threads sharing one score block (each takes every SPLIT-th chunk)
const uint QC = MAX_C / SPLIT;  // query chunks per row and thread
const uint RED = G * T + 1u; // padded so that the SPLIT partials of one score sit in distinct banks
const uint MIN_SLICE = 32u;  // keys per split slice at least
const float NEG = -3.402823e38;

shared uvec2 ks[T * MAX_C];     // the key tile as stored: 4 elements per uvec2
shared float red[SPLIT * RED];  // score partials
shared float sc[G * T];         // scores of the tile [g][key]
shared float ps[T * G];         // probabilities [key][g]
shared float m_row[G], l_row[G], corr[G], m_new[G];
shared uint n_row[G];           // keys row g may see (0 past the last row)

vec4 unpack4(uvec2 w) { return vec4(unpack_kv(w.x), unpack_kv(w.y)); }

void main() {
  const uint tid = gl_LocalInvocationID.x, r0 = gl_WorkGroupID.x * G, z = gl_WorkGroupID.z;
  const uint C = (p.L + p.R) / 4u, CL = p.L / 4u;

  if (tid < G) {
    const uint r = r0 + tid;
    n_row[tid] = r < p.n_rows ? uint(pos[p.pos0 + r / p.n_head]) + 1u : 0u;
    m_row[tid] = NEG;
    l_row[tid] = 0.0;
  }
  // Score block of this thread: rows 2 rb, 2 rb + 1, keys 4 kb .. 4 kb + 3, chunks sidx + SPLIT i.
  const uint sidx = tid % SPLIT, blk = tid / SPLIT, rb = blk / (T / 4u), kb = blk % (T / 4u);
  vec4 q[2][QC];  // this thread's chunks of its two query rows [q_lat | q_pe], times scale
  for (uint a = 0u; a < 2u; ++a) {
    const uint r = r0 + 2u * rb + a, t = r / p.n_head, h = r - t * p.n_head;
    for (uint i = 0u; i < QC; ++i) {
      const uint c = sidx + SPLIT * i;
      vec4 v = vec4(0.0);
      if (r < p.n_rows && c < C) {
        if (c < CL) {
          const uint b = p.ql0 + t * p.ql_tok + h * p.ql_head + 4u * c;
          v = vec4(q_lat[b], q_lat[b + 1u], q_lat[b + 2u], q_lat[b + 3u]);
        } else {
          const uint b = p.qp0 + t * p.qp_tok + h * p.qp_head + 4u * (c - CL);
          v = vec4(q_pe[b], q_pe[b + 1u], q_pe[b + 2u], q_pe[b + 3u]);
        }
      }
      q[a][i] = v * p.scale;
    }
  }
  barrier();
  uint n_max = 0u;
  for (uint g = 0u; g < G; ++g) n_max = max(n_max, n_row[g]);
  const uint per = (n_max + p.n_split - 1u) / p.n_split;
  const uint slice = max((per + T - 1u) / T * T, MIN_SLICE);
  const uint k0 = z * slice, k_end = min(k0 + slice, n_max);

  // Output of this thread: rows 2 rp, 2 rp + 1, chunks dc and dc + 64 of o_lat.
  const uint rp = tid / 64u, dc = tid % 64u;
  vec4 acc[2][2];
  for (uint a = 0u; a < 2u; ++a) acc[a][0] = acc[a][1] = vec4(0.0);

  for (uint t0 = k0; t0 < k_end; t0 += T) {
    const uint nk = min(T, k_end - t0);
    const uint wb = t0 * (2u * C);  // first word of the tile (rows are 2C words, contiguous)
    for (uint i = tid; i < T * C; i += WG) {
      const uint key = i / C;
      ks[key * MAX_C + (i - key * C)] =
          key < nk ? uvec2(cache[wb + 2u * i], cache[wb + 2u * i + 1u]) : uvec2(0u);
    }
    barrier();

    float s[2][4];
    for (uint a = 0u; a < 2u; ++a)
      for (uint b = 0u; b < 4u; ++b) s[a][b] = 0.0;
    for (uint i = 0u; i < QC; ++i) {  // constant trip count: q[][] stays in registers
      const uint c = sidx + SPLIT * i;
      if (c < C) {
        for (uint b = 0u; b < 4u; ++b) {
          const vec4 k = unpack4(ks[(4u * kb + b) * MAX_C + c]);
          s[0][b] += dot(q[0][i], k);
          s[1][b] += dot(q[1][i], k);
        }
      }
    }
    for (uint a = 0u; a < 2u; ++a)
      for (uint b = 0u; b < 4u; ++b) red[sidx * RED + (2u * rb + a) * T + 4u * kb + b] = s[a][b];
    barrier();

    if (tid < G * T) {
      const uint g = tid / T, key = tid % T, j = t0 + key;
      float v = 0.0;
      for (uint i = 0u; i < SPLIT; ++i) v += red[i * RED + tid];
      sc[tid] = j < min(n_row[g], k_end) ? v : NEG;
    }
    barrier();
    if (tid < G * T) {
      const uint g = tid / T, key = tid % T;
      float mx = m_row[g];
      for (uint k = 0u; k < T; ++k) mx = max(mx, sc[g * T + k]);
      const float v = sc[tid];
      ps[key * G + g] = v > NEG ? exp(v - mx) : 0.0;
      if (key == 0u) {
        corr[g] = exp(m_row[g] - mx);
        m_new[g] = mx;
      }
    }
    barrier();

    const float c0 = corr[2u * rp], c1 = corr[2u * rp + 1u];
    acc[0][0] *= c0;
    acc[0][1] *= c0;
    acc[1][0] *= c1;
    acc[1][1] *= c1;
    if (dc < CL) {
      const bool second = dc + 64u < CL;
      for (uint k = 0u; k < nk; ++k) {
        const float p0 = ps[k * G + 2u * rp], p1 = ps[k * G + 2u * rp + 1u];
        const vec4 v0 = unpack4(ks[k * MAX_C + dc]);
        acc[0][0] += p0 * v0;
        acc[1][0] += p1 * v0;
        if (second) {
          const vec4 v1 = unpack4(ks[k * MAX_C + dc + 64u]);
          acc[0][1] += p0 * v1;
          acc[1][1] += p1 * v1;
        }
      }
    }
    if (tid < G) {
      float sum = 0.0;
      for (uint k = 0u; k < nk; ++k) sum += ps[k * G + tid];
      l_row[tid] = l_row[tid] * corr[tid] + sum;
      m_row[tid] = m_new[tid];
    }
    barrier();
  }

  for (uint a = 0u; a < 2u; ++a) {
    const uint g = 2u * rp + a, r = r0 + g;
    if (r >= p.n_rows) continue;
    if (p.n_split > 1u) {
      const uint pb = (r * p.n_split + z) * (p.L + 2u);
      for (uint e = 0u; e < 2u; ++e) {
        const uint c = dc + 64u * e;
        if (c < CL) {
          part[pb + 4u * c] = acc[a][e].x;
          part[pb + 4u * c + 1u] = acc[a][e].y;
          part[pb + 4u * c + 2u] = acc[a][e].z;
          part[pb + 4u * c + 3u] = acc[a][e].w;
        }
      }
      if (dc == 0u) {
        part[pb + p.L] = m_row[g];
        part[pb + p.L + 1u] = l_row[g];
      }
    } else {
      const uint t = r / p.n_head, h = r - t * p.n_head;
      const uint ob = p.o0 + t * p.o_tok + h * p.o_head;
      const float inv = 1.0 / l_row[g];
      for (uint e = 0u; e < 2u; ++e) {
        const uint c = dc + 64u * e;
        if (c < CL) {
          o[ob + 4u * c] = acc[a][e].x * inv;
          o[ob + 4u * c + 1u] = acc[a][e].y * inv;
          o[ob + 4u * c + 2u] = acc[a][e].z * inv;
          o[ob + 4u * c + 3u] = acc[a][e].w * inv;
        }
      }
    }
  }
}
