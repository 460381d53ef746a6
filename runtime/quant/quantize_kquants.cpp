// Reference encoders of the K-quant super-blocks. Per super-block: fit each sub-block's scale
// (and min) by a small least-squares search (scale_search.h), quantize those to the format's
// integer scales against one or two f16 super-scales, then round every element against the
// scale the decoder will actually use. Element placement is written per element index here, as
// a second description of the layouts that dequantize_kquants.cpp walks in loop order; the
// round-trip tests check the two agree.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/rounding.h"
#include "runtime/quant/row_codecs.h"
#include "runtime/quant/scale_packing.h"
#include "runtime/quant/scale_search.h"

namespace tandem::row_codecs {
namespace {

constexpr int kMaxSubBlocks = 16;
// How far from the rounded integer sub-block scale (and min) the final search looks.
constexpr int kNeighbours = 2;

// Sub-block scales/mins as unsigned integers of `levels` steps of two f16 super-scales.
struct AsymmetricScales {
  uint16_t d_bits = 0, dmin_bits = 0;
  float d = 0, dmin = 0;
  int scale[kMaxSubBlocks] = {};
  int min[kMaxSubBlocks] = {};
  // What the decoder computes for element x of sub-block s: d*scale*q - dmin*min.
  int quant(int s, float x, int qmax) const {
    const float ds = d * float(scale[s]);
    const float dm = dmin * float(min[s]);
    return quantize_value(x + dm, ds, 0, qmax);
  }
};

AsymmetricScales fit_asymmetric(const float* x, int sub_blocks, int sub_size, int qmax,
                                int levels) {
  ScaleAndMin fits[kMaxSubBlocks];
  float max_scale = 0, max_min = 0;
  for (int s = 0; s < sub_blocks; ++s) {
    fits[s] = fit_scale_min(x + s * sub_size, sub_size, qmax);
    max_scale = std::max(max_scale, fits[s].scale);
    max_min = std::max(max_min, fits[s].min);
  }
  AsymmetricScales out;
  out.d_bits = f32_to_f16(max_scale / float(levels));
  out.dmin_bits = f32_to_f16(max_min / float(levels));
  out.d = f16_to_f32(out.d_bits);
  out.dmin = f16_to_f32(out.dmin_bits);
  // Rounding the fitted scale and min separately can land on a poor pair; try the neighbours
  // of the rounded pair and keep the one with the least error after re-rounding the quants.
  for (int s = 0; s < sub_blocks; ++s) {
    const float* xs = x + s * sub_size;
    const int sc0 = quantize_value(fits[s].scale, out.d, 0, levels);
    const int m0 = quantize_value(fits[s].min, out.dmin, 0, levels);
    double best_err = -1;
    for (int sc = std::max(0, sc0 - kNeighbours); sc <= std::min(levels, sc0 + kNeighbours); ++sc)
      for (int m = std::max(0, m0 - kNeighbours); m <= std::min(levels, m0 + kNeighbours); ++m) {
        const float ds = out.d * float(sc), dm = out.dmin * float(m);
        double err = 0;
        for (int i = 0; i < sub_size; ++i) {
          const int q = quantize_value(xs[i] + dm, ds, 0, qmax);
          const double e = double(ds * float(q) - dm) - xs[i];
          err += e * e;
        }
        if (best_err < 0 || err < best_err) {
          best_err = err;
          out.scale[s] = sc;
          out.min[s] = m;
        }
      }
  }
  return out;
}

// Sub-block scales as signed integers lo..hi of one f16 super-scale; the largest-magnitude
// scale maps onto lo, the side of the range with one more level.
struct SymmetricScales {
  uint16_t d_bits = 0;
  float d = 0;
  int scale[kMaxSubBlocks] = {};
  int quant(int s, float x, int qlo, int qhi) const {
    return quantize_value(x, d * float(scale[s]), qlo, qhi);
  }
};

SymmetricScales fit_symmetric(const float* x, int sub_blocks, int sub_size, int qneg, int lo,
                              int hi) {
  float fits[kMaxSubBlocks];
  float extreme = 0;
  for (int s = 0; s < sub_blocks; ++s) {
    fits[s] = fit_symmetric_scale(x + s * sub_size, sub_size, qneg);
    if (std::fabs(fits[s]) > std::fabs(extreme)) extreme = fits[s];
  }
  SymmetricScales out;
  out.d_bits = f32_to_f16(extreme / float(lo));
  out.d = f16_to_f32(out.d_bits);
  for (int s = 0; s < sub_blocks; ++s) {
    const float* xs = x + s * sub_size;
    const int sc0 = quantize_value(fits[s], out.d, lo, hi);
    double best_err = -1;
    for (int sc = std::max(lo, sc0 - kNeighbours); sc <= std::min(hi, sc0 + kNeighbours); ++sc) {
      const float ds = out.d * float(sc);
      double err = 0;
      for (int i = 0; i < sub_size; ++i) {
        const double e = double(ds * float(quantize_value(xs[i], ds, -qneg, qneg - 1))) - xs[i];
        err += e * e;
      }
      if (best_err < 0 || err < best_err) {
        best_err = err;
        out.scale[s] = sc;
      }
    }
  }
  return out;
}

// Position of element e (0..255) in the half/quarter walk of Q2_K, Q3_K and Q6_K.
struct QuarterPos {
  int half, quarter, lane;  // lane: 0..31 within the 32-byte slice
};
QuarterPos quarter_pos(int e) { return {e / 128, (e % 128) / 32, e % 32}; }

// Position of element e in the 64-element chunk walk of Q4_K and Q5_K.
struct ChunkPos {
  int chunk, upper, lane;  // upper: element sits in the high nibble
};
ChunkPos chunk_pos(int e) { return {e / 64, (e % 64) / 32, e % 32}; }

}  // namespace

void quantize_q2_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ2_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ2_K blk;
    std::memset(&blk, 0, sizeof blk);
    const AsymmetricScales sc = fit_asymmetric(src, 16, 16, 3, 15);
    blk.d = sc.d_bits;
    blk.dmin = sc.dmin_bits;
    for (int s = 0; s < 16; ++s) blk.scales[s] = uint8_t(sc.scale[s] | (sc.min[s] << 4));
    for (int e = 0; e < kQKK; ++e) {
      const int q = sc.quant(e / 16, src[e], 3);
      const QuarterPos p = quarter_pos(e);
      blk.qs[32 * p.half + p.lane] |= uint8_t(q << (2 * p.quarter));
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_q3_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ3_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ3_K blk;
    std::memset(&blk, 0, sizeof blk);
    const SymmetricScales sc = fit_symmetric(src, 16, 16, 4, -32, 31);
    blk.d = sc.d_bits;
    for (int s = 0; s < 16; ++s) pack_q3k_scale(blk.scales, s, sc.scale[s]);
    for (int e = 0; e < kQKK; ++e) {
      const int stored = sc.quant(e / 16, src[e], -4, 3) + 4;  // 0..7
      const QuarterPos p = quarter_pos(e);
      blk.qs[32 * p.half + p.lane] |= uint8_t((stored & 3) << (2 * p.quarter));
      blk.hmask[p.lane] |= uint8_t((stored >> 2) << (4 * p.half + p.quarter));
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_q4_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ4_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ4_K blk;
    std::memset(&blk, 0, sizeof blk);
    const AsymmetricScales sc = fit_asymmetric(src, 8, 32, 15, 63);
    blk.d = sc.d_bits;
    blk.dmin = sc.dmin_bits;
    for (int s = 0; s < 8; ++s)
      pack_k4_scale_min(blk.scales, s, uint8_t(sc.scale[s]), uint8_t(sc.min[s]));
    for (int e = 0; e < kQKK; ++e) {
      const int q = sc.quant(e / 32, src[e], 15);
      const ChunkPos p = chunk_pos(e);
      blk.qs[32 * p.chunk + p.lane] |= uint8_t(q << (4 * p.upper));
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_q5_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ5_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ5_K blk;
    std::memset(&blk, 0, sizeof blk);
    const AsymmetricScales sc = fit_asymmetric(src, 8, 32, 31, 63);
    blk.d = sc.d_bits;
    blk.dmin = sc.dmin_bits;
    for (int s = 0; s < 8; ++s)
      pack_k4_scale_min(blk.scales, s, uint8_t(sc.scale[s]), uint8_t(sc.min[s]));
    for (int e = 0; e < kQKK; ++e) {
      const int q = sc.quant(e / 32, src[e], 31);
      const ChunkPos p = chunk_pos(e);
      blk.qs[32 * p.chunk + p.lane] |= uint8_t((q & 0xF) << (4 * p.upper));
      blk.qh[p.lane] |= uint8_t((q >> 4) << (2 * p.chunk + p.upper));
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_q6_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ6_K blk;
    std::memset(&blk, 0, sizeof blk);
    const SymmetricScales sc = fit_symmetric(src, 16, 16, 32, -128, 127);
    blk.d = sc.d_bits;
    for (int s = 0; s < 16; ++s) blk.scales[s] = int8_t(sc.scale[s]);
    for (int e = 0; e < kQKK; ++e) {
      const int stored = sc.quant(e / 16, src[e], -32, 31) + 32;  // 0..63
      const QuarterPos p = quarter_pos(e);
      const int low_byte = 64 * p.half + p.lane + 32 * (p.quarter & 1);
      blk.ql[low_byte] |= uint8_t((stored & 0xF) << (p.quarter < 2 ? 0 : 4));
      blk.qh[32 * p.half + p.lane] |= uint8_t((stored >> 4) << (2 * p.quarter));
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

// Q8_K (activations for the CPU dot products): symmetric 8-bit with an f32 scale, plus the sum
// of each 16 quants (bsums) that the K-quant dot products use to apply the mins.
void quantize_q8_k(const float* src, void* dst, int64_t nblocks) {
  auto* blocks = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockQ8_K blk;
    std::memset(&blk, 0, sizeof blk);
    float amax = 0;
    for (int e = 0; e < kQKK; ++e) amax = std::max(amax, std::fabs(src[e]));
    blk.d = amax / 127.0f;
    for (int e = 0; e < kQKK; ++e) {
      blk.qs[e] = int8_t(quantize_value(src[e], blk.d, -127, 127));
      blk.bsums[e / 16] = int16_t(blk.bsums[e / 16] + blk.qs[e]);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

}  // namespace tandem::row_codecs
