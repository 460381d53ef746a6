// Decoders of the lattice i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S): each
// group of 8 (IQ1, IQ2) or 4 (IQ3) elements is one point of the type's codebook (iq_grids.h),
// times a sub-block scale; IQ2/IQ3 points are magnitudes with per-element signs, IQ1 points are
// -1/0/+1 shifted by a shared +-kIq1sDelta. The bit layouts are described in block_formats.h.
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grids.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

uint8_t grid_byte(uint64_t point, int j) { return uint8_t(point >> (8 * j)); }

// 8 elements: magnitudes of `point` with the minus signs set in `signs` (bit j: element j).
void put_signed8(uint64_t point, uint8_t signs, float scale, float* dst) {
  for (int j = 0; j < 8; ++j) dst[j] = scale * float(grid_byte(point, j)) * ((signs >> j) & 1 ? -1.0f : 1.0f);
}

// 4 elements of an IQ3 point with the signs in bits 0..3 of `signs`.
void put_signed4(uint32_t point, unsigned signs, float scale, float* dst) {
  for (int j = 0; j < 4; ++j) dst[j] = scale * float(uint8_t(point >> (8 * j))) * ((signs >> j) & 1 ? -1.0f : 1.0f);
}

// 8 elements of an IQ1 point shifted by delta.
void put_shifted8(uint64_t point, float delta, float scale, float* dst) {
  for (int j = 0; j < 8; ++j) dst[j] = scale * (float(int8_t(grid_byte(point, j))) + delta);
}

uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

void dequantize_iq2_xxs(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ2_XXS*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ2_XXS& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int run = 0; run < 8; ++run) {
      // 4 grid bytes, then a word of 4 x 7 sign bits with the run's 4-bit scale on top.
      const uint8_t* idx = reinterpret_cast<const uint8_t*>(blk.qs + 4 * run);
      const uint32_t aux = load_u32(blk.qs + 4 * run + 2);
      const float scale = d * (0.5f + float(aux >> 28)) * 0.25f;
      for (int g = 0; g < 4; ++g, dst += 8)
        put_signed8(iq::kIq2xxsGrid[idx[g]], iq::kSignsEven[(aux >> (7 * g)) & 127], scale, dst);
    }
  }
}

void dequantize_iq2_xs(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ2_XS*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ2_XS& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int g = 0; g < 32; ++g, dst += 8) {
      const int s = (blk.scales[g / 4] >> (4 * ((g / 2) % 2))) & 0xF;  // one scale per 16
      const uint16_t q = blk.qs[g];
      put_signed8(iq::kIq2xsGrid[q & 511], iq::kSignsEven[q >> 9], d * (0.5f + float(s)) * 0.25f, dst);
    }
  }
}

void dequantize_iq2_s(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ2_S*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ2_S& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    const uint8_t* signs = blk.qs + kQKK / 8;
    for (int g = 0; g < 32; ++g, dst += 8) {
      const int s = (blk.scales[g / 4] >> (4 * ((g / 2) % 2))) & 0xF;
      const int index = blk.qs[g] | (((blk.qh[g / 4] >> (2 * (g % 4))) & 3) << 8);
      put_signed8(iq::kIq2sGrid[index], signs[g], d * (0.5f + float(s)) * 0.25f, dst);
    }
  }
}

void dequantize_iq3_xxs(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ3_XXS*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ3_XXS& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int run = 0; run < 8; ++run) {
      const uint8_t* idx = blk.qs + 8 * run;
      const uint32_t aux = load_u32(blk.qs + kQKK / 4 + 4 * run);
      const float scale = d * (0.5f + float(aux >> 28)) * 0.5f;
      for (int g = 0; g < 4; ++g, dst += 8) {
        const uint8_t signs = iq::kSignsEven[(aux >> (7 * g)) & 127];
        put_signed4(iq::kIq3xxsGrid[idx[2 * g]], signs, scale, dst);
        put_signed4(iq::kIq3xxsGrid[idx[2 * g + 1]], signs >> 4, scale, dst + 4);
      }
    }
  }
}

void dequantize_iq3_s(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ3_S*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ3_S& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int run = 0; run < 8; ++run) {
      const int s = (blk.scales[run / 2] >> (4 * (run % 2))) & 0xF;
      const float scale = d * float(1 + 2 * s);
      for (int q = 0; q < 8; ++q, dst += 4) {  // 8 points of 4 per run
        const int index = blk.qs[8 * run + q] | (((blk.qh[run] >> q) & 1) << 8);
        put_signed4(iq::kIq3sGrid[index], blk.signs[4 * run + q / 2] >> (4 * (q % 2)), scale, dst);
      }
    }
  }
}

void dequantize_iq1_s(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ1_S*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ1_S& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int run = 0; run < 8; ++run) {
      const unsigned h = blk.qh[run];
      const float scale = d * float(2 * ((h >> 12) & 7) + 1);
      const float delta = h & 0x8000 ? -iq::kIq1sDelta : iq::kIq1sDelta;
      for (int g = 0; g < 4; ++g, dst += 8)
        put_shifted8(iq::kIq1sGrid[blk.qs[4 * run + g] | (((h >> (3 * g)) & 7) << 8)], delta, scale, dst);
    }
  }
}

float iq1_m_super_scale(const BlockIQ1_M& blk) {
  uint16_t sc[4];
  std::memcpy(sc, blk.scales, sizeof sc);
  const uint16_t bits = uint16_t((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
  return f16_to_f32(bits);
}

void dequantize_iq1_m(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ1_M*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ1_M& blk = blocks[b];
    const float d = iq1_m_super_scale(blk);
    uint16_t sc[4];
    std::memcpy(sc, blk.scales, sizeof sc);
    for (int g = 0; g < 32; ++g, dst += 8) {
      const int half = g / 2;  // 16-element half-run: its 3-bit scale
      const int s = (sc[half / 4] >> (3 * (half % 4))) & 7;
      const unsigned nib = (blk.qh[g / 2] >> (4 * (g % 2))) & 0xF;  // 3 index bits + delta sign
      const float delta = nib & 8 ? -iq::kIq1sDelta : iq::kIq1sDelta;
      put_shifted8(iq::kIq1sGrid[blk.qs[g] | ((nib & 7) << 8)], delta, d * float(2 * s + 1), dst);
    }
  }
}

}  // namespace tandem::row_codecs
