// Element pairs of a latent KV cache row, packed two per 32-bit word: F16 by default, BF16 when
// the shader is compiled with KV_BF16 (round to nearest even on store, as half.h f32_to_bf16).
#ifdef KV_BF16
uint kv_round_bf16(float f) {
  const uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;  // quiet NaN
  return (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
}
uint pack_kv(vec2 v) { return kv_round_bf16(v.x) | (kv_round_bf16(v.y) << 16); }
vec2 unpack_kv(uint w) { return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u)); }
#else
uint pack_kv(vec2 v) { return packHalf2x16(v); }
vec2 unpack_kv(uint w) { return unpackHalf2x16(w); }
#endif
