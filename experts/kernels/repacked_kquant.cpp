// Repacking of Q4_K / Q5_K / Q6_K rows into the prefill layout (repacked.h), the scalar
// definition of its tile kernels (what the SIMD tiles are tested against) and the format table.
#include <algorithm>
#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "experts/kernels/repacked.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts {
namespace {

constexpr int64_t kNibBytes = 2048;
constexpr int64_t kQ4Bytes = kNibBytes + 2 * 128 + 2 * 64;
constexpr int64_t kQ5Bytes = kNibBytes + 512 + 2 * 128 + 2 * 64;
constexpr int64_t kQ6Bytes = kNibBytes + 1024 + 256 + 64;
static_assert(kQ4Bytes % 64 == 0 && kQ5Bytes % 64 == 0 && kQ6Bytes % 64 == 0);

// The repack writes each 4-byte word of the layout once, straight from the GGUF block's bytes:
// no decoding to one byte per quant (that was ~0.1 GB/s per thread and made repacking the
// experts the whole of a load's time). A quant plane's bytes are handled 8 at a time in a
// uint64_t, each byte a lane: shifts and masks never carry across lanes since every value
// stays below 256.

// Row r of the nibble plane for the 32 columns 32s..32s+31 of a block: src[j] holds the quant
// of column 32s + j in bits shift..shift+3. The layout's word for columns 8k..8k+7 (k = 4s + m)
// has byte c = q(8k + c) | q(8k + 4 + c) << 4.
inline void put_nibble_segment(const uint8_t* src, int shift, int s, int r, uint8_t* out) {
  for (int m = 0; m < 4; ++m) {
    uint64_t v;
    std::memcpy(&v, src + 8 * m, 8);
    v = (v >> shift) & 0x0F0F0F0F0F0F0F0Full;
    const uint32_t word = uint32_t(v) | uint32_t(v >> 32) << 4;
    std::memcpy(out + (4 * s + m) * 64 + r * 4, &word, 4);
  }
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void put_q45_scales(const uint8_t* scales, uint16_t d16, uint16_t dmin16, int r, uint8_t* out) {
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    k4_scale_min(scales, s, &sc, &m);
    out[s * 16 + r] = uint8_t(sc), out[128 + s * 16 + r] = uint8_t(m);
  }
  const float d = half_to_float(d16), dmin = half_to_float(dmin16);
  std::memcpy(out + 256 + 4 * r, &d, 4);
  std::memcpy(out + 320 + 4 * r, &dmin, 4);
}

// Q4_K and Q5_K: quant i's low nibble is in qs[32 * (i / 64) + i % 32], bits 4 * ((i / 32) % 2).
template <typename Block>
void put_q45_nibbles(const Block& b, int r, uint8_t* out) {
  for (int s = 0; s < 8; ++s) put_nibble_segment(b.qs + 32 * (s / 2), 4 * (s % 2), s, r, out);
}

void put_row_block(const BlockQ4_K& b, int r, uint8_t* out) {
  put_q45_nibbles(b, r, out);
  put_q45_scales(b.scales, b.d, b.dmin, r, out + kNibBytes);
}

void put_row_block(const BlockQ5_K& b, int r, uint8_t* out) {
  put_q45_nibbles(b, r, out);
  // Bit j of byte [s][r][c] = bit 4 of q(32s + 4j + c) = bit s of qh[4j + c].
  for (int s = 0; s < 8; ++s) {
    uint32_t word = 0;
    for (int j = 0; j < 8; ++j) word |= ((load_u32(b.qh + 4 * j) >> s) & 0x01010101u) << j;
    std::memcpy(out + kNibBytes + s * 64 + r * 4, &word, 4);
  }
  put_q45_scales(b.scales, b.d, b.dmin, r, out + kNibBytes + 512);
}

void put_row_block(const BlockQ6_K& b, int r, uint8_t* out) {
  // Quant i = 128h + 32q + l: low nibble in ql[64h + 32(q % 2) + l], bits 4 * (q / 2); bits
  // 4..5 in qh[32h + l], bits 2q.
  for (int s = 0; s < 8; ++s) {
    const int h = s / 4, q = s % 4;
    put_nibble_segment(b.ql + 64 * h + 32 * (q % 2), 4 * (q / 2), s, r, out);
  }
  // Bits 2j..2j+1 of byte [g][r][c] = bits 4..5 of q(16g + 4j + c).
  for (int g = 0; g < 16; ++g) {
    const uint8_t* qh = b.qh + 32 * (g / 8) + 16 * (g % 2);
    const int shift = 2 * ((g % 8) / 2);
    uint32_t word = 0;
    for (int j = 0; j < 4; ++j) word |= ((load_u32(qh + 4 * j) >> shift) & 0x03030303u) << (2 * j);
    std::memcpy(out + kNibBytes + g * 64 + r * 4, &word, 4);
  }
  for (int s = 0; s < 16; ++s) out[kNibBytes + 1024 + s * 16 + r] = uint8_t(b.scales[s]);
  const float d = half_to_float(b.d);
  std::memcpy(out + kNibBytes + 1024 + 256 + 4 * r, &d, 4);
}

template <typename Block, GgmlType kType>
void repack_rows(const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst) {
  const RepackedFormat& f = *repacked_format(kType);
  const int64_t n_blocks = cols / 256, n_groups = (n_rows + kRepackRows - 1) / kRepackRows;
  const int64_t group_bytes = f.group_bytes(cols);
  // Every word of a present row is written; only a last, partial group has rows to zero.
  if (n_rows % kRepackRows != 0) std::memset(dst + (n_groups - 1) * group_bytes, 0, size_t(group_bytes));
  // Block by block, the 16 rows of a group: one destination block (2-3 KB) stays in L1 while
  // its rows are written (row by row, a group's whole row span would cycle through L2).
  for (int64_t g = 0; g < n_groups; ++g) {
    const int n = int(std::min<int64_t>(kRepackRows, n_rows - g * kRepackRows));
    uint8_t* group = dst + g * group_bytes;
    for (int64_t b = 0; b < n_blocks; ++b)
      for (int r = 0; r < n; ++r) {
        const auto* blocks = reinterpret_cast<const Block*>(rows + (g * kRepackRows + r) * row_bytes);
        put_row_block(blocks[b], r, group + b * f.block_bytes);
      }
  }
}

// Quant of (row r, column i) of one block back from the layout.
int nibble(const uint8_t* blk, int r, int i) { return (blk[(i / 8) * 64 + r * 4 + i % 4] >> (4 * ((i / 4) % 2))) & 15; }

float f32_at(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

template <bool kQ5>
void tile_q45_scalar(const uint8_t* group, int64_t cols, const void* const* acts, const float* const* act_sums,
                     int n_tokens, float* out) {
  const int64_t block_bytes = kQ5 ? kQ5Bytes : kQ4Bytes;
  for (int t = 0; t < n_tokens; ++t) {
    const auto* a = static_cast<const ActBlockQ8K*>(acts[t]);
    for (int r = 0; r < kRepackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < cols / 256; ++b) {
        const uint8_t* blk = group + b * block_bytes;
        const uint8_t* sc = blk + kNibBytes + (kQ5 ? 512 : 0);
        const float d = f32_at(sc + 256 + 4 * r), dmin = f32_at(sc + 320 + 4 * r);
        float block = 0;
        for (int s = 0; s < 8; ++s) {
          int32_t sum = 0;
          for (int i = 32 * s; i < 32 * s + 32; ++i) {
            int q = nibble(blk, r, i);
            if (kQ5) q |= ((blk[kNibBytes + s * 64 + r * 4 + i % 4] >> ((i % 32) / 4)) & 1) << 4;
            sum += q * a[b].qs[i];
          }
          block += d * float(sc[s * 16 + r]) * float(sum);
          acc -= dmin * float(sc[128 + s * 16 + r]) * act_sums[t][b * 8 + s];
        }
        acc += a[b].d * block;
      }
      out[t * kRepackRows + r] = acc;
    }
  }
}

void tile_q6_scalar(const uint8_t* group, int64_t cols, const void* const* acts, const float* const*, int n_tokens,
                    float* out) {
  for (int t = 0; t < n_tokens; ++t) {
    const auto* a = static_cast<const ActBlockQ8K*>(acts[t]);
    for (int r = 0; r < kRepackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < cols / 256; ++b) {
        const uint8_t* blk = group + b * kQ6Bytes;
        const auto* sc = reinterpret_cast<const int8_t*>(blk + kNibBytes + 1024);
        float block = 0;
        for (int g = 0; g < 16; ++g) {
          int32_t sum = -32 * a[b].bsums[g];
          for (int i = 16 * g; i < 16 * g + 16; ++i) {
            const int hi = (blk[kNibBytes + g * 64 + r * 4 + i % 4] >> (2 * ((i % 16) / 4))) & 3;
            sum += (nibble(blk, r, i) | hi << 4) * a[b].qs[i];
          }
          block += float(sc[g * 16 + r]) * float(sum);
        }
        acc += block * (f32_at(blk + kNibBytes + 1024 + 256 + 4 * r) * a[b].d);
      }
      out[t * kRepackRows + r] = acc;
    }
  }
}

const RepackedFormat kFormats[] = {
    {GgmlType::Q4_K, kQ4Bytes, true, repack_rows<BlockQ4_K, GgmlType::Q4_K>, tile_q45_scalar<false>},
    {GgmlType::Q5_K, kQ5Bytes, true, repack_rows<BlockQ5_K, GgmlType::Q5_K>, tile_q45_scalar<true>},
    {GgmlType::Q6_K, kQ6Bytes, false, repack_rows<BlockQ6_K, GgmlType::Q6_K>, tile_q6_scalar},
};

}  // namespace

const RepackedFormat* repacked_format(GgmlType type) {
  for (const auto& f : kFormats)
    if (f.type == type) return &f;
  return nullptr;
}

RepackedTileFn repacked_tile_kernel(GgmlType type, CpuIsa isa) {
  // Amx is avx512 plus tiles: the vpdpbusd kernels run there too.
  if ((isa != CpuIsa::Avx512 && isa != CpuIsa::Amx) || !cpu_supports(isa)) return nullptr;
  switch (type) {
    case GgmlType::Q4_K: return avx512::repacked_q4k_tile;
    case GgmlType::Q5_K: return avx512::repacked_q5k_tile;
    case GgmlType::Q6_K: return avx512::repacked_q6k_tile;
    default: return nullptr;
  }
}

void q8k_sub_block_sums(const void* act_row, int64_t cols, float* out) {
  const auto* a = static_cast<const ActBlockQ8K*>(act_row);
  for (int64_t b = 0; b < cols / 256; ++b)
    for (int s = 0; s < 8; ++s) out[b * 8 + s] = a[b].d * float(a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
}

}  // namespace tandem::experts
