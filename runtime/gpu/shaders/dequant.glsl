// Decoding of GGUF weight rows, read straight from their on-disk block layout
// (runtime/quant/block_formats.h). The including shader declares `uint w[]` (the weights, any
// byte alignment) and defines one WEIGHT_<TYPE>. dequant_unit() yields 32 consecutive elements:
// unit u of a row covers elements [32u, 32u + 32).

uint w_u32(uint b) {  // 4 bytes at any byte offset, little-endian
  const uint s = (b & 3u) * 8u;
  const uint lo = w[b >> 2];
  if (s == 0u) return lo;
  return (lo >> s) | (w[(b >> 2) + 1u] << (32u - s));
}
uint w_u8(uint b) { return (w[b >> 2] >> ((b & 3u) * 8u)) & 0xffu; }
float w_f16(uint b) { return unpackHalf2x16(w_u8(b) | (w_u8(b + 1u) << 8)).x; }

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

void dequant_unit(uint row, uint u, out float v[32]) {
#if defined(WEIGHT_F32)
  const uint b = row + u * 128u;
  for (uint i = 0u; i < 32u; ++i) v[i] = uintBitsToFloat(w_u32(b + 4u * i));
#elif defined(WEIGHT_F16)
  const uint b = row + u * 64u;
  for (uint i = 0u; i < 16u; ++i) {
    const vec2 h = unpackHalf2x16(w_u32(b + 4u * i));
    v[2u * i] = h.x;
    v[2u * i + 1u] = h.y;
  }
#elif defined(WEIGHT_BF16)
  const uint b = row + u * 64u;
  for (uint i = 0u; i < 16u; ++i) {
    const uint h = w_u32(b + 4u * i);
    v[2u * i] = uintBitsToFloat(h << 16);
    v[2u * i + 1u] = uintBitsToFloat(h & 0xffff0000u);
  }
#elif defined(WEIGHT_Q8_0)
  const uint b = row + u * 34u;
  const float d = w_f16(b);
  for (uint i = 0u; i < 8u; ++i) {
    const int q = int(w_u32(b + 2u + 4u * i));
    for (int j = 0; j < 4; ++j) v[4u * i + uint(j)] = d * float(bitfieldExtract(q, 8 * j, 8));
  }
#elif defined(WEIGHT_Q4_0)
  const uint b = row + u * 18u;
  const float d = w_f16(b);
  for (uint i = 0u; i < 4u; ++i) {
    const uint q = w_u32(b + 2u + 4u * i);
    for (uint j = 0u; j < 4u; ++j) {
      v[4u * i + j] = d * (float((q >> (8u * j)) & 0xfu) - 8.0);
      v[16u + 4u * i + j] = d * (float((q >> (8u * j + 4u)) & 0xfu) - 8.0);
    }
  }
#elif defined(WEIGHT_Q4_K)
  const uint b = row + (u >> 3) * 144u;
  const uint s = u & 7u;
  float sc, m;
  k4_scale_min(b + 4u, s, sc, m);
  const float d = w_f16(b) * sc, dm = w_f16(b + 2u) * m;
  const uint qs = b + 16u + (s >> 1) * 32u, shift = (s & 1u) * 4u;
  for (uint i = 0u; i < 8u; ++i) {
    const uint q = w_u32(qs + 4u * i);
    for (uint j = 0u; j < 4u; ++j) v[4u * i + j] = d * float((q >> (8u * j + shift)) & 0xfu) - dm;
  }
#elif defined(WEIGHT_Q5_K)
  const uint b = row + (u >> 3) * 176u;
  const uint s = u & 7u;
  float sc, m;
  k4_scale_min(b + 4u, s, sc, m);
  const float d = w_f16(b) * sc, dm = w_f16(b + 2u) * m;
  const uint qs = b + 48u + (s >> 1) * 32u, shift = (s & 1u) * 4u;
  for (uint i = 0u; i < 8u; ++i) {
    const uint q = w_u32(qs + 4u * i);
    const uint h = w_u32(b + 16u + 4u * i);
    for (uint j = 0u; j < 4u; ++j)
      v[4u * i + j] = d * float(((q >> (8u * j + shift)) & 0xfu) | (((h >> (8u * j + s)) & 1u) << 4)) - dm;
  }
#elif defined(WEIGHT_Q6_K)
  const uint b = row + (u >> 3) * 210u;
  const uint half_ = (u >> 2) & 1u, t = u & 3u;
  const uint ql = b + half_ * 64u + (t & 1u) * 32u, nib = (t >> 1) * 4u;
  const uint qh = b + 128u + half_ * 32u, hs = 2u * t;
  const uint scb = b + 192u + half_ * 8u + 2u * t;
  const float d = w_f16(b + 208u);
  const float d0 = d * float(bitfieldExtract(int(w_u8(scb)), 0, 8));
  const float d1 = d * float(bitfieldExtract(int(w_u8(scb + 1u)), 0, 8));
  for (uint i = 0u; i < 8u; ++i) {
    const uint a = w_u32(ql + 4u * i), h = w_u32(qh + 4u * i);
    const float dd = i < 4u ? d0 : d1;
    for (uint j = 0u; j < 4u; ++j)
      v[4u * i + j] = dd * (float(((a >> (8u * j + nib)) & 0xfu) | (((h >> (8u * j + hs)) & 3u) << 4)) - 32.0);
  }
#else
#error "define one WEIGHT_<TYPE>"
#endif
}
