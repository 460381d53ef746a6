// Decoding of GGUF weight rows, read straight from their on-disk block layout
// (runtime/quant/block_formats.h). The including shader declares `uint w[]` (the weights, any
// byte alignment) and defines one WEIGHT_<TYPE>.
//
// dequant4(row, u, q) yields elements 32u + 4q .. 32u + 4q + 3 of the row starting at byte
// `row`: a 32-element unit is read by 8 neighbouring threads, so consecutive threads read
// consecutive words of a block (coalesced) and the matching x values are consecutive too.
// Float types (FLOAT_WEIGHT) also have dequant1() for rows whose length is not a multiple of 4.

uint w_u32(uint b) {  // 4 bytes at any byte offset, little-endian
  const uint s = (b & 3u) * 8u;
  const uint lo = w[b >> 2];
  if (s == 0u) return lo;
  return (lo >> s) | (w[(b >> 2) + 1u] << (32u - s));
}
uint w_u8(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
// GGUF f16 fields are 2-byte aligned (rows and blocks start at even bytes): one word load.
float w_f16(uint b) { return unpackHalf2x16(w[b >> 2] >> ((b & 2u) * 8u)).x; }
// Byte j (0..3) of word v as a float.
float byte_f(uint v, uint j) { return float((v >> (8u * j)) & 0xffu); }
vec4 bytes4(uint v) { return vec4(float(v & 0xffu), float((v >> 8) & 0xffu), float((v >> 16) & 0xffu), float(v >> 24)); }
vec4 sbytes4(uint v) {
  const int s = int(v);
  return vec4(float(bitfieldExtract(s, 0, 8)), float(bitfieldExtract(s, 8, 8)), float(bitfieldExtract(s, 16, 8)),
              float(bitfieldExtract(s, 24, 8)));
}

#if defined(WEIGHT_F32) || defined(WEIGHT_F16) || defined(WEIGHT_BF16)
#define FLOAT_WEIGHT 1
#endif

#if defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
// The 6-bit scale and min of sub-block s from the 12 packed bytes at `sb`.
void k4_scale_min(uint sb, uint s, out float sc, out float m) {
  if (s < 4u) {
    sc = float(w_u8(sb + s) & 63u);
    m = float(w_u8(sb + s + 4u) & 63u);
  } else {
    sc = float((w_u8(sb + s + 4u) & 0xfu) | ((w_u8(sb + s - 4u) >> 6) << 4));
    m = float((w_u8(sb + s + 4u) >> 4) | ((w_u8(sb + s) >> 6) << 4));
  }
}
#endif

#if defined(WEIGHT_Q4_0) || defined(WEIGHT_Q4_1) || defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1)
// Legacy 4/5-bit blocks: elements 0..15 are the low nibbles of qs[0..15], 16..31 the high ones.
vec4 legacy_nibbles(uint qs, uint q) {
  const uint v = w_u32(qs + 4u * (q & 3u)) >> ((q >> 2) * 4u);
  return bytes4(v & 0x0f0f0f0fu);
}
#endif
#if defined(WEIGHT_Q5_0) || defined(WEIGHT_Q5_1)
vec4 legacy_high_bits(uint qh_byte, uint q) {  // bit (4q + j) of the 32-bit qh, times 16
  const uint h = (w_u32(qh_byte) >> (4u * q)) & 0xfu;
  return vec4(float(h & 1u), float((h >> 1) & 1u), float((h >> 2) & 1u), float(h >> 3)) * 16.0;
}
#endif

#if defined(WEIGHT_IQ4_NL) || defined(WEIGHT_IQ4_XS)
// The 16-level codebook of IQ4_NL / IQ4_XS (kIq4nlValues in block_formats.h).
const float kIq4Levels[16] = float[16](-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0,
                                       38.0, 53.0, 69.0, 89.0, 113.0);
// Levels of elements 4q .. 4q + 3 of the 32-element run whose 16 nibble bytes start at `qs`
// (byte j: element j in the low nibble, j + 16 in the high one).
vec4 iq4_levels(uint qs, uint q) {
  const uint v = (w_u32(qs + 4u * (q & 3u)) >> ((q >> 2) * 4u)) & 0x0f0f0f0fu;
  return vec4(kIq4Levels[v & 0xfu], kIq4Levels[(v >> 8) & 0xfu], kIq4Levels[(v >> 16) & 0xfu], kIq4Levels[v >> 24]);
}
#endif

#if defined(WEIGHT_IQ1_S) || defined(WEIGHT_IQ1_M) || defined(WEIGHT_IQ2_XXS) || defined(WEIGHT_IQ2_XS) || \
    defined(WEIGHT_IQ2_S) || defined(WEIGHT_IQ3_XXS) || defined(WEIGHT_IQ3_S)
// Lattice i-quants: grid points from the type's codebook (runtime/quant/iq_grids.h), a storage
// buffer the host binds after the shader's own bindings (runtime/gpu/codebooks.h); a 64-bit
// point is words 2i, 2i + 1. Unit u of 32 is sub-block u & 7 of super-block u >> 3; quarter q is
// half q & 1 of the group of 8 q >> 1.
#define IQ_LATTICE 1
#ifndef CODEBOOK_BINDING
#error "a shader decoding lattice i-quants defines CODEBOOK_BINDING (its own binding count)"
#endif
layout(binding = CODEBOOK_BINDING) readonly buffer Codebook { uint iq_grid[]; };
const float kIq1sDelta = 0.125;  // iq::kIq1sDelta
uint w_u16(uint b) { return (w[b >> 2] >> ((b & 2u) * 8u)) & 0xffffu; }  // b even
// Signs of 4 elements from the low 4 bits of s: -1 where a bit is set.
vec4 iq_signs4(uint s) {
  return vec4(1.0) - 2.0 * vec4(float(s & 1u), float((s >> 1) & 1u), float((s >> 2) & 1u), float((s >> 3) & 1u));
}
// The 8 signs of a 7-bit index: bit 7 makes the number of minus signs even.
uint iq_even_signs(uint s7) { return s7 | ((bitCount(s7) & 1u) << 7); }
#endif

vec4 dequant4(uint row, uint u, uint q) {
#if defined(WEIGHT_F32)
  const uint b = row + (u * 32u + q * 4u) * 4u;
  return vec4(uintBitsToFloat(w_u32(b)), uintBitsToFloat(w_u32(b + 4u)), uintBitsToFloat(w_u32(b + 8u)),
              uintBitsToFloat(w_u32(b + 12u)));
#elif defined(WEIGHT_F16)
  const uint b = row + (u * 32u + q * 4u) * 2u;
  return vec4(unpackHalf2x16(w_u32(b)), unpackHalf2x16(w_u32(b + 4u)));
#elif defined(WEIGHT_BF16)
  const uint b = row + (u * 32u + q * 4u) * 2u;
  const uint h0 = w_u32(b), h1 = w_u32(b + 4u);
  return vec4(uintBitsToFloat(h0 << 16), uintBitsToFloat(h0 & 0xffff0000u), uintBitsToFloat(h1 << 16),
              uintBitsToFloat(h1 & 0xffff0000u));
#elif defined(WEIGHT_Q8_0)
  const uint b = row + u * 34u;
  return w_f16(b) * sbytes4(w_u32(b + 2u + 4u * q));
#elif defined(WEIGHT_Q4_0)
  const uint b = row + u * 18u;
  return w_f16(b) * (legacy_nibbles(b + 2u, q) - 8.0);
#elif defined(WEIGHT_Q4_1)
  const uint b = row + u * 20u;
  return w_f16(b) * legacy_nibbles(b + 4u, q) + w_f16(b + 2u);
#elif defined(WEIGHT_Q5_0)
  const uint b = row + u * 22u;
  return w_f16(b) * (legacy_nibbles(b + 6u, q) + legacy_high_bits(b + 2u, q) - 16.0);
#elif defined(WEIGHT_Q5_1)
  const uint b = row + u * 24u;
  return w_f16(b) * (legacy_nibbles(b + 8u, q) + legacy_high_bits(b + 4u, q)) + w_f16(b + 2u);
#elif defined(WEIGHT_Q2_K)
  // 84 bytes: scales[16], qs[64], d, dmin. Unit s = 4 * half + shift index; sub-block of 16.
  const uint b = row + (u >> 3) * 84u;
  const uint s = u & 7u, half_ = s >> 2, shift = (s & 3u) * 2u;
  const uint sc = w_u8(b + 2u * s + (q >> 2));
  const uint v = (w_u32(b + 16u + 32u * half_ + 4u * q) >> shift) & 0x03030303u;
  return w_f16(b + 80u) * float(sc & 0xfu) * bytes4(v) - w_f16(b + 82u) * float(sc >> 4);
#elif defined(WEIGHT_Q3_K)
  // 110 bytes: hmask[32], qs[64], scales[12], d. Low 2 bits from qs, minus 4 unless the hmask bit is set.
  const uint b = row + (u >> 3) * 110u;
  const uint s = u & 7u, half_ = s >> 2, shift = (s & 3u) * 2u;
  const uint sub = 2u * s + (q >> 2);
  const uint lo = sub < 8u ? (w_u8(b + 96u + sub) & 0xfu) : (w_u8(b + 96u + sub - 8u) >> 4);
  const uint hi = (w_u8(b + 104u + (sub & 3u)) >> (2u * (sub >> 2))) & 3u;
  const float dl = w_f16(b + 108u) * float(int(lo | (hi << 4)) - 32);
  const uint v = (w_u32(b + 32u + 32u * half_ + 4u * q) >> shift) & 0x03030303u;
  const uint hm = (w_u32(b + 4u * q) >> s) & 0x01010101u;  // bit s = 4 * half + shift index
  return dl * (bytes4(v) - 4.0 + 4.0 * bytes4(hm));
#elif defined(WEIGHT_Q4_K)
  const uint b = row + (u >> 3) * 144u;
  const uint s = u & 7u;
  float sc, m;
  k4_scale_min(b + 4u, s, sc, m);
  const uint v = (w_u32(b + 16u + (s >> 1) * 32u + 4u * q) >> ((s & 1u) * 4u)) & 0x0f0f0f0fu;
  return w_f16(b) * sc * bytes4(v) - w_f16(b + 2u) * m;
#elif defined(WEIGHT_Q5_K)
  const uint b = row + (u >> 3) * 176u;
  const uint s = u & 7u;
  float sc, m;
  k4_scale_min(b + 4u, s, sc, m);
  const uint v = (w_u32(b + 48u + (s >> 1) * 32u + 4u * q) >> ((s & 1u) * 4u)) & 0x0f0f0f0fu;
  const uint h = (w_u32(b + 16u + 4u * q) >> s) & 0x01010101u;
  return w_f16(b) * sc * (bytes4(v) + 16.0 * bytes4(h)) - w_f16(b + 2u) * m;
#elif defined(WEIGHT_Q6_K)
  const uint b = row + (u >> 3) * 210u;
  const uint half_ = (u >> 2) & 1u, t = u & 3u;
  const uint a = (w_u32(b + half_ * 64u + (t & 1u) * 32u + 4u * q) >> ((t >> 1) * 4u)) & 0x0f0f0f0fu;
  const uint h = (w_u32(b + 128u + half_ * 32u + 4u * q) >> (2u * t)) & 0x03030303u;
  const float dd = w_f16(b + 208u) * float(bitfieldExtract(int(w_u8(b + 192u + half_ * 8u + 2u * t + (q >> 2))), 0, 8));
  return dd * (bytes4(a | (h << 4)) - 32.0);
#elif defined(WEIGHT_IQ4_NL)
  const uint b = row + u * 18u;
  return w_f16(b) * iq4_levels(b + 2u, q);
#elif defined(WEIGHT_IQ4_XS)
  // 136 bytes: d, scales_h (2 bits per run), scales_l[4] (a nibble per run), qs[128]. Run s of 32.
  const uint b = row + (u >> 3) * 136u;
  const uint s = u & 7u;
  const uint hw = w_u32(b);  // d | scales_h << 16
  const uint lo = (w_u8(b + 4u + (s >> 1)) >> (4u * (s & 1u))) & 0xfu;
  const uint hi = (hw >> (16u + 2u * s)) & 3u;
  return unpackHalf2x16(hw).x * float(int(lo | (hi << 4)) - 32) * iq4_levels(b + 8u + 16u * s, q);
#elif defined(WEIGHT_IQ2_XXS)
  // 66 bytes: d, per sub-block a word of 4 grid bytes and a word of 4 x 7 sign bits | scale << 28.
  const uint b = row + (u >> 3) * 66u, ib = u & 7u, l = q >> 1;
  const uint aux = w_u32(b + 6u + 8u * ib);
  const uint g = iq_grid[2u * ((w_u32(b + 2u + 8u * ib) >> (8u * l)) & 0xffu) + (q & 1u)];
  const float dl = w_f16(b) * float(2u * (aux >> 28) + 1u) * 0.125;
  return dl * bytes4(g) * iq_signs4(iq_even_signs((aux >> (7u * l)) & 127u) >> (4u * (q & 1u)));
#elif defined(WEIGHT_IQ2_XS)
  // 74 bytes: d, qs[32] (9-bit grid index | 7 sign bits << 9), scales[8] (a nibble per 16).
  const uint b = row + (u >> 3) * 74u, ib = u & 7u, l = q >> 1;
  const uint v = w_u16(b + 2u + 8u * ib + 2u * l);
  const uint g = iq_grid[2u * (v & 511u) + (q & 1u)];
  const uint s = (w_u8(b + 66u + ib) >> (4u * (l >> 1))) & 0xfu;
  return w_f16(b) * float(2u * s + 1u) * 0.125 * bytes4(g) * iq_signs4(iq_even_signs(v >> 9) >> (4u * (q & 1u)));
#elif defined(WEIGHT_IQ2_S)
  // 82 bytes: d, qs[32] (low 8 index bits), signs[32] (a bit per element), qh[8] (2 high bits
  // per group of 8), scales[8] (a nibble per 16).
  const uint b = row + (u >> 3) * 82u, ib = u & 7u, l = q >> 1;
  const uint idx = w_u8(b + 2u + 4u * ib + l) | (((w_u8(b + 66u + ib) >> (2u * l)) & 3u) << 8);
  const uint g = iq_grid[2u * idx + (q & 1u)];
  const uint s = (w_u8(b + 74u + ib) >> (4u * (l >> 1))) & 0xfu;
  return w_f16(b) * float(2u * s + 1u) * 0.125 * bytes4(g) *
         iq_signs4(w_u8(b + 34u + 4u * ib + l) >> (4u * (q & 1u)));
#elif defined(WEIGHT_IQ3_XXS)
  // 98 bytes: d, qs[64] (a grid index per 4), per sub-block a word of 4 x 7 sign bits | scale << 28.
  const uint b = row + (u >> 3) * 98u, ib = u & 7u, l = q >> 1;
  const uint aux = w_u32(b + 66u + 4u * ib);
  const uint g = iq_grid[w_u8(b + 2u + 8u * ib + q)];
  const float dl = w_f16(b) * float(2u * (aux >> 28) + 1u) * 0.25;
  return dl * bytes4(g) * iq_signs4(iq_even_signs((aux >> (7u * l)) & 127u) >> (4u * (q & 1u)));
#elif defined(WEIGHT_IQ3_S)
  // 110 bytes: d, qs[64] (low 8 index bits per 4), qh[8] (9th bits), signs[32], scales[4] (nibbles).
  const uint b = row + (u >> 3) * 110u, ib = u & 7u, l = q >> 1;
  const uint idx = w_u8(b + 2u + 8u * ib + q) | (((w_u8(b + 66u + ib) >> q) & 1u) << 8);
  const uint s = (w_u8(b + 106u + (ib >> 1)) >> (4u * (ib & 1u))) & 0xfu;
  return w_f16(b) * float(2u * s + 1u) * bytes4(iq_grid[idx]) *
         iq_signs4(w_u8(b + 74u + 4u * ib + l) >> (4u * (q & 1u)));
#elif defined(WEIGHT_IQ1_S)
  // 50 bytes: d, qs[32] (low 8 bits of 11-bit indices), qh[8] words (3 high bits per index,
  // scale at 12, the delta's sign at 15). w = d * (2s + 1) * (grid +- delta).
  const uint b = row + (u >> 3) * 50u, ib = u & 7u, l = q >> 1;
  const uint qh = w_u16(b + 34u + 2u * ib);
  const uint idx = w_u8(b + 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8);
  const float delta = (qh & 0x8000u) != 0u ? -kIq1sDelta : kIq1sDelta;
  return w_f16(b) * float(2u * ((qh >> 12) & 7u) + 1u) * (sbytes4(iq_grid[2u * idx + (q & 1u)]) + delta);
#elif defined(WEIGHT_IQ1_M)
  // 56 bytes: qs[32], qh[16] (a nibble per index: 3 high bits, the delta's sign at 3), scales[8]
  // (four words: 3-bit scales per 16 in bits 0..11, the f16 d in the top nibbles).
  const uint b = row + (u >> 3) * 56u, ib = u & 7u, l = q >> 1;
  const uint s01 = w_u32(b + 48u), s23 = w_u32(b + 52u);
  const uint dh = ((s01 >> 12) & 0xfu) | ((s01 >> 24) & 0xf0u) | ((s23 >> 4) & 0xf00u) | ((s23 >> 16) & 0xf000u);
  const uint nib = (w_u8(b + 32u + 2u * ib + (l >> 1)) >> (4u * (l & 1u))) & 0xfu;
  const uint idx = w_u8(b + 4u * ib + l) | ((nib & 7u) << 8);
  const uint sw = ((ib >> 1) < 2u ? s01 : s23) >> (16u * ((ib >> 1) & 1u));
  const uint s = (sw >> (6u * (ib & 1u) + 3u * (l >> 1))) & 7u;
  const float delta = (nib & 8u) != 0u ? -kIq1sDelta : kIq1sDelta;
  return unpackHalf2x16(dh).x * float(2u * s + 1u) * (sbytes4(iq_grid[2u * idx + (q & 1u)]) + delta);
#else
#error "define one WEIGHT_<TYPE>"
#endif
}

#ifdef FLOAT_WEIGHT
float dequant1(uint row, uint k) {  // element k of a float row
#if defined(WEIGHT_F32)
  return uintBitsToFloat(w_u32(row + 4u * k));
#elif defined(WEIGHT_F16)
  return w_f16(row + 2u * k);
#else
  const uint b = row + 2u * k;  // 2-byte aligned: stay inside the word holding it
  return uintBitsToFloat((w[b >> 2] >> ((b & 2u) * 8u)) << 16);
#endif
}
#endif

#ifdef KQ_CHUNKS
// Chunked K-quant decoding for matrix-vector products (matvec_kquant.comp). A 256-element
// super-block is split into chunks; a chunk is KQ_RUNS runs of 16 elements whose quants come
// from one 16-byte slice of qs (Q6_K: of qh), read with wide loads, with each run's scale and
// bias decoded once: W[e0 + i] = scale * q[i] + bias, q[i] the i-th byte of KqRun.q as a signed
// byte. Quants are centred (Q4_K's 0..15 become -8..7, the bias takes the rest) so that int8
// products of them with rounded activations lose less; Q6_K and Q3_K have no bias
// (KQ_NO_BIAS). The including shader also declares `uvec4 w4[]` aliasing
// `w` (Q4_K/Q5_K rows must then start 16-byte aligned).
struct KqRun {
  uvec4 q;
  float scale;
  float bias;
};

#if defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
#define KQ_RUNS 2u
#else
#define KQ_RUNS 4u
#endif
#if defined(WEIGHT_Q6_K) || defined(WEIGHT_Q3_K)
#define KQ_NO_BIAS 1
#endif
#define KQ_CHUNKS_PER_BLOCK (16u / KQ_RUNS)

// Element (within its super-block) of the first value of run r of chunk t: chunks alternate
// between the two 16-element halves of a 32-element stretch, runs step by 32.
uint kq_run_elem(uint t, uint r) { return 32u * KQ_RUNS * (t >> 1) + 32u * r + 16u * (t & 1u); }

// Bytes 0..127 minus k (< 128) as signed bytes: bias every byte by 128 so the per-byte
// subtraction never borrows across bytes, then remove the bias.
uvec4 kq_sub_bytes(uvec4 v, uint k) {
  return ((v | 0x80808080u) - uvec4(k * 0x01010101u)) ^ 0x80808080u;
}

// 16 bytes at a 2-byte aligned offset (Q6_K and Q3_K blocks are 210 and 110 bytes long).
uvec4 w_16_a2(uint b) {
  const uint i = b >> 2;
  const uvec4 a = uvec4(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
  if ((b & 2u) == 0u) return a;
  return (a >> 16) | (uvec4(a.yzw, w[i + 4u]) << 16);
}

#if defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
uint kq_byte(uvec3 v, uint i) { return (v[i >> 2] >> (8u * (i & 3u))) & 0xffu; }
// 6-bit scale and min of sub-block s from the 12 scale bytes (words 1..3 of the block header).
void kq_scale_min(uvec3 sc, uint s, out float scale, out float mn) {
  if (s < 4u) {
    scale = float(kq_byte(sc, s) & 63u);
    mn = float(kq_byte(sc, s + 4u) & 63u);
  } else {
    scale = float((kq_byte(sc, s + 4u) & 0xfu) | ((kq_byte(sc, s - 4u) >> 6) << 4));
    mn = float((kq_byte(sc, s + 4u) >> 4) | ((kq_byte(sc, s) >> 6) << 4));
  }
}
#endif

// Chunk t (0 .. KQ_CHUNKS_PER_BLOCK-1) of the super-block starting at byte b.
void kq_chunk(uint b, uint t, out KqRun run[KQ_RUNS]) {
#if defined(WEIGHT_Q4_K) || defined(WEIGHT_Q5_K)
  const uvec4 h = w4[b >> 4];  // d, dmin, 12 scale bytes
  const vec2 dm = unpackHalf2x16(h.x);
  const uint j = t >> 1;
#if defined(WEIGHT_Q4_K)
  const uvec4 qs = w4[(b >> 4) + 1u + t];
  run[0].q = kq_sub_bytes(qs & 0x0f0f0f0fu, 8u);
  run[1].q = kq_sub_bytes((qs >> 4) & 0x0f0f0f0fu, 8u);
  const float centre = 8.0;
#else
  const uvec4 qh = w4[(b >> 4) + 1u + (t & 1u)];
  const uvec4 qs = w4[(b >> 4) + 3u + t];
  run[0].q = kq_sub_bytes((qs & 0x0f0f0f0fu) | (((qh >> (2u * j)) & 0x01010101u) << 4), 16u);
  run[1].q = kq_sub_bytes(((qs >> 4) & 0x0f0f0f0fu) | (((qh >> (2u * j + 1u)) & 0x01010101u) << 4), 16u);
  const float centre = 16.0;
#endif
  for (uint r = 0u; r < 2u; ++r) {
    float sc, mn;
    kq_scale_min(h.yzw, 2u * j + r, sc, mn);
    run[r].scale = dm.x * sc;
    run[r].bias = centre * run[r].scale - dm.y * mn;
  }
#elif defined(WEIGHT_Q6_K)
  // ql[128], qh[64], int8 scales[16], d. Chunk t: half n, 16-byte column m of qh.
  const uint n = t >> 1, m = t & 1u;
  const uvec4 qh = w_16_a2(b + 128u + 32u * n + 16u * m);
  const uvec4 qa = w_16_a2(b + 64u * n + 16u * m);
  const uvec4 qb = w_16_a2(b + 64u * n + 32u + 16u * m);
  const float d = w_f16(b + 208u);
  run[0].q = kq_sub_bytes((qa & 0x0f0f0f0fu) | ((qh & 0x03030303u) << 4), 32u);
  run[1].q = kq_sub_bytes((qb & 0x0f0f0f0fu) | (((qh >> 2) & 0x03030303u) << 4), 32u);
  run[2].q = kq_sub_bytes(((qa >> 4) & 0x0f0f0f0fu) | (((qh >> 4) & 0x03030303u) << 4), 32u);
  run[3].q = kq_sub_bytes(((qb >> 4) & 0x0f0f0f0fu) | (((qh >> 6) & 0x03030303u) << 4), 32u);
  // Scales 8n + m + 2r: bytes m, m+2, m+4, m+6 of the 8 at 192 + 8n.
  const uint s0 = w_u32(b + 192u + 8u * n), s1 = w_u32(b + 196u + 8u * n);
  const ivec4 sc = ivec4(bitfieldExtract(int(s0), int(8u * m), 8), bitfieldExtract(int(s0), int(8u * m + 16u), 8),
                         bitfieldExtract(int(s1), int(8u * m), 8), bitfieldExtract(int(s1), int(8u * m + 16u), 8));
  for (uint r = 0u; r < 4u; ++r) {
    run[r].scale = d * float(sc[r]);
    run[r].bias = 0.0;
  }
#elif defined(WEIGHT_Q2_K)
  // scales[16] (scale | min << 4), qs[64], d, dmin. Chunk t: half n, 16-byte column h of qs.
  const uint n = t >> 1, hh = t & 1u;
  const uint i = (b + 16u + 32u * n + 16u * hh) >> 2;  // Q2_K blocks (84 bytes) are 4-byte aligned
  const uvec4 qs = uvec4(w[i], w[i + 1u], w[i + 2u], w[i + 3u]);
  const vec2 dm = unpackHalf2x16(w[(b + 80u) >> 2]);
  const uvec2 scw = uvec2(w[(b >> 2) + 2u * n], w[(b >> 2) + 2u * n + 1u]);
  for (uint r = 0u; r < 4u; ++r) {
    run[r].q = kq_sub_bytes((qs >> (2u * r)) & 0x03030303u, 2u);
    const uint sc = (scw[r >> 1] >> (8u * (hh + 2u * (r & 1u)))) & 0xffu;  // scale index 8n + 2r + hh
    run[r].scale = dm.x * float(sc & 0xfu);
    run[r].bias = 2.0 * run[r].scale - dm.y * float(sc >> 4);
  }
#elif defined(WEIGHT_Q3_K)
  // hmask[32], qs[64], scales[12] (6-bit, minus 32), d. Chunk t: half n, 16-byte column h of qs.
  const uint n = t >> 1, hh = t & 1u;
  const uvec4 qs = w_16_a2(b + 32u + 32u * n + 16u * hh);
  const uvec4 hm = w_16_a2(b + 16u * hh);
  // scales[12] then d; word loads that stay inside the block.
  const uvec3 scv = uvec3(w_u32(b + 96u), w_u32(b + 100u), w_u32(b + 104u));
  const float d = w_f16(b + 108u);
  for (uint r = 0u; r < 4u; ++r) {
    const uvec4 u = ((qs >> (2u * r)) & 0x03030303u) | (((hm >> (4u * n + r)) & 0x01010101u) << 2);
    run[r].q = kq_sub_bytes(u, 4u);
    const uint sub = 8u * n + 2u * r + hh;
    const uint lo = ((scv[(sub & 7u) >> 2] >> (8u * (sub & 3u))) >> (4u * (sub >> 3))) & 0xfu;
    const uint hi = (scv[2] >> (8u * (sub & 3u) + 2u * (sub >> 2))) & 3u;
    run[r].scale = d * float(int(lo | (hi << 4)) - 32);
    run[r].bias = 0.0;
  }
#else
#error "KQ_CHUNKS needs a K-quant WEIGHT_<TYPE>"
#endif
}
#endif  // KQ_CHUNKS
