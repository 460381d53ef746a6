// Byte layouts of the quantized blocks stored in GGUF files (little-endian, packed).
// Each struct is exactly the on-disk block; static_asserts pin the sizes.
#pragma once

#include <cstdint>

namespace tandem {

constexpr int kQK = 32;    // elements per legacy block (Q4_0 ... Q8_1)
constexpr int kQKK = 256;  // elements per K-quant super-block
constexpr int kKScaleBytes = 12;  // packed 6-bit scales/mins of Q4_K and Q5_K

#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };
struct BlockQ2_K { uint8_t scales[kQKK / 16]; uint8_t qs[kQKK / 4]; uint16_t d; uint16_t dmin; };
struct BlockQ3_K { uint8_t hmask[kQKK / 8]; uint8_t qs[kQKK / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qs[kQKK / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qh[kQKK / 8]; uint8_t qs[kQKK / 2]; };
struct BlockQ6_K { uint8_t ql[kQKK / 2]; uint8_t qh[kQKK / 4]; int8_t scales[kQKK / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[kQKK]; int16_t bsums[kQKK / 16]; };
// Non-linear 4-bit types: each nibble indexes kIq4nlValues, times the (sub-)block scale. Nibble
// order as in Q4_0: byte j of a 32-element run holds element j (low) and j + 16 (high).
struct BlockIQ4_NL { uint16_t d; uint8_t qs[kQK / 2]; };
// 8 runs of 32 with a 6-bit scale each (stored +32): low 4 bits in nibble (s % 2) of
// scales_l[s / 2], high 2 bits at bit 2s of scales_h.
struct BlockIQ4_XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[kQKK / 64]; uint8_t qs[kQKK / 2]; };
// Lattice (codebook) types: groups of 8 (IQ2, IQ1) or 4 (IQ3) elements are one grid index into
// iq_grids.h; IQ2/IQ3 add per-element signs, IQ1 one shared +-delta per group. Layouts:
// IQ2_XXS: per 32 elements 2 uint16 = 4 grid bytes (one per 8), then 4 x 7 sign bits (ksigns)
//   and a 4-bit scale in the top bits; element = d * (0.5 + s) / 4 * grid * sign.
struct BlockIQ2_XXS { uint16_t d; uint16_t qs[kQKK / 8]; };
// IQ2_XS: per 8 elements a uint16 = 9-bit grid index + 7 sign bits; a 4-bit scale per 16.
struct BlockIQ2_XS { uint16_t d; uint16_t qs[kQKK / 8]; uint8_t scales[kQKK / 32]; };
// IQ2_S: 10-bit grid index per 8 (low 8 in qs, high 2 in qh), explicit sign bytes after the
//   indices in qs (qs[32..63]), a 4-bit scale per 16.
struct BlockIQ2_S { uint16_t d; uint8_t qs[kQKK / 4]; uint8_t qh[kQKK / 32]; uint8_t scales[kQKK / 32]; };
// IQ3_XXS: 64 grid bytes (one per 4), then per 32 a uint32 of 4 x 7 sign bits + 4-bit scale.
struct BlockIQ3_XXS { uint16_t d; uint8_t qs[3 * kQKK / 8]; };
// IQ3_S: 9-bit grid index per 4 (low 8 in qs, high bit in qh), explicit signs, 4-bit scale
//   per 32; element = d * (1 + 2 s) * grid * sign.
struct BlockIQ3_S { uint16_t d; uint8_t qs[kQKK / 4]; uint8_t qh[kQKK / 32]; uint8_t signs[kQKK / 8]; uint8_t scales[kQKK / 64]; };
// IQ1_S: 11-bit grid index per 8 (low 8 in qs, 3 high in qh); per 32 a uint16 qh holding those
//   high bits, a 3-bit scale (bits 12-14) and the delta sign (bit 15).
//   element = d * (2 s + 1) * (grid +- kIq1sDelta).
struct BlockIQ1_S { uint16_t d; uint8_t qs[kQKK / 8]; uint16_t qh[kQKK / 32]; };
// IQ1_M: no fp16 field of its own: the super-block scale is spread over the top 4 bits of the
//   four uint16 words of `scales`, whose other bits are 3-bit scales per 16 elements. qh: per 8
//   elements 3 high index bits and a delta-sign bit, one nibble each.
struct BlockIQ1_M { uint8_t qs[kQKK / 8]; uint8_t qh[kQKK / 16]; uint8_t scales[kQKK / 32]; };
// Ternary types (values -1, 0, +1 times d). TQ1_0: 5 trits per byte in qs (base 3, read as a
//   fixed-point fraction), the last 16 as 4 trits per byte in qh. TQ2_0: 2 bits per element.
struct BlockTQ1_0 { uint8_t qs[(kQKK - 4 * kQKK / 64) / 5]; uint8_t qh[kQKK / 64]; uint16_t d; };
struct BlockTQ2_0 { uint8_t qs[kQKK / 4]; uint16_t d; };
#pragma pack(pop)

// The IQ4_NL / IQ4_XS codebook: 16 signed levels, denser near zero where weights cluster.
constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockIQ2_XXS) == 66);
static_assert(sizeof(BlockIQ2_XS) == 74);
static_assert(sizeof(BlockIQ2_S) == 82);
static_assert(sizeof(BlockIQ3_XXS) == 98);
static_assert(sizeof(BlockIQ3_S) == 110);
static_assert(sizeof(BlockIQ1_S) == 50);
static_assert(sizeof(BlockIQ1_M) == 56);
static_assert(sizeof(BlockTQ1_0) == 54);
static_assert(sizeof(BlockTQ2_0) == 66);

}  // namespace tandem
