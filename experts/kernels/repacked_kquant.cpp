// Repacking of Q4_K / Q5_K / Q6_K rows into the prefill layout (repacked.h), the scalar
// definition of its tile kernels (what the SIMD tiles are tested against) and the format table.
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

// One row's block decoded: unsigned quants and the scale fields the layout keeps.
struct RowBlock {
  uint8_t q[256];
  int sc[16], m[8];  // Q4/Q5: sc[0..7], m[0..7]; Q6: sc[0..15] signed
  float d, dmin;
};

void decode(const BlockQ4_K& b, RowBlock& o) {
  o.d = half_to_float(b.d), o.dmin = half_to_float(b.dmin);
  for (int s = 0; s < 8; ++s) k4_scale_min(b.scales, s, &o.sc[s], &o.m[s]);
  for (int i = 0; i < 256; ++i) {
    const int byte = b.qs[32 * (i / 64) + i % 32];
    o.q[i] = uint8_t((i % 64) < 32 ? (byte & 0xF) : (byte >> 4));
  }
}

void decode(const BlockQ5_K& b, RowBlock& o) {
  o.d = half_to_float(b.d), o.dmin = half_to_float(b.dmin);
  for (int s = 0; s < 8; ++s) k4_scale_min(b.scales, s, &o.sc[s], &o.m[s]);
  for (int i = 0; i < 256; ++i) {
    const int byte = b.qs[32 * (i / 64) + i % 32];
    const int low = (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    o.q[i] = uint8_t(low | (((b.qh[i % 32] >> (i / 32)) & 1) << 4));
  }
}

void decode(const BlockQ6_K& b, RowBlock& o) {
  o.d = half_to_float(b.d), o.dmin = 0;
  for (int g = 0; g < 16; ++g) o.sc[g] = b.scales[g];
  for (int i = 0; i < 256; ++i) {
    const int half = i / 128, quarter = (i % 128) / 32, l = i % 32;
    const int low = quarter & 1 ? b.ql[64 * half + l + 32] : b.ql[64 * half + l];
    const int nibble = quarter < 2 ? (low & 0xF) : (low >> 4);
    o.q[i] = uint8_t(nibble | (((b.qh[32 * half + l] >> (2 * quarter)) & 3) << 4));
  }
}

// Writes row r of a group's block; the destination starts zeroed.
void put_nibbles(const RowBlock& rb, int r, uint8_t* out) {
  for (int i = 0; i < 256; ++i) out[(i / 8) * 64 + r * 4 + i % 4] |= uint8_t((rb.q[i] & 15) << (4 * ((i / 4) % 2)));
}

void put_q45_scales(const RowBlock& rb, int r, uint8_t* out) {
  for (int s = 0; s < 8; ++s) out[s * 16 + r] = uint8_t(rb.sc[s]), out[128 + s * 16 + r] = uint8_t(rb.m[s]);
  std::memcpy(out + 256 + 4 * r, &rb.d, 4);
  std::memcpy(out + 320 + 4 * r, &rb.dmin, 4);
}

template <typename Block, GgmlType kType>
void repack_rows(const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst) {
  const RepackedFormat& f = *repacked_format(kType);
  const int64_t n_blocks = cols / 256, n_groups = (n_rows + kRepackRows - 1) / kRepackRows;
  std::memset(dst, 0, size_t(f.bytes(n_rows, cols)));
  RowBlock rb;
  for (int64_t g = 0; g < n_groups; ++g)
    for (int r = 0; r < kRepackRows && g * kRepackRows + r < n_rows; ++r) {
      const auto* blocks = reinterpret_cast<const Block*>(rows + (g * kRepackRows + r) * row_bytes);
      for (int64_t b = 0; b < n_blocks; ++b) {
        decode(blocks[b], rb);
        uint8_t* out = dst + g * f.group_bytes(cols) + b * f.block_bytes;
        put_nibbles(rb, r, out);
        if constexpr (kType == GgmlType::Q4_K) {
          put_q45_scales(rb, r, out + kNibBytes);
        } else if constexpr (kType == GgmlType::Q5_K) {
          for (int i = 0; i < 256; ++i)
            out[kNibBytes + (i / 32) * 64 + r * 4 + i % 4] |= uint8_t(((rb.q[i] >> 4) & 1) << ((i % 32) / 4));
          put_q45_scales(rb, r, out + kNibBytes + 512);
        } else {
          for (int i = 0; i < 256; ++i)
            out[kNibBytes + (i / 16) * 64 + r * 4 + i % 4] |= uint8_t(((rb.q[i] >> 4) & 3) << (2 * ((i % 16) / 4)));
          for (int s = 0; s < 16; ++s) out[kNibBytes + 1024 + s * 16 + r] = uint8_t(int8_t(rb.sc[s]));
          std::memcpy(out + kNibBytes + 1024 + 256 + 4 * r, &rb.d, 4);
        }
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
