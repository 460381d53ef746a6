// Encoders of the lattice i-quants. Per sub-block (16 or 32 elements sharing a scale):
// 1. signs (IQ2/IQ3): the codebooks hold magnitudes, so each element's sign is taken from x; where
//    the format only stores 7 of 8 signs (even parity: IQ2_XXS, IQ2_XS, IQ3_XXS) and x has an
//    odd number of negatives, the element of least weighted magnitude gets the wrong sign.
// 2. scale: trial scales map the largest target onto the top level, from a little above it to
//    well inside (low-bit codebooks do best clipping their few largest values), or onto one of
//    the lower levels; at each trial
//    every group takes its best codebook point (iq_grid_search), the scale is refitted by
//    weighted least squares, and the refit with the smallest weighted error wins.
// 3. the super-block scale d maps the largest sub-block scale onto the top of its integer
//    range; each sub-block tries the integer scales around its fit and keeps the one whose
//    re-chosen points give the smallest error, so the points fit the scale the decoder reads.
// IQ1 points are -1/0/+1 plus a +-delta per 32 (IQ1_S) or per 8 (IQ1_M): both delta signs are
// tried. Weights: the importance of each column when given (else all 1), so that the columns the
// model leans on are reproduced more closely.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/iq_grid_search.h"
#include "runtime/quant/iq_grids.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

using iq_search::Codebook;

constexpr int kMaxSub = 32;
constexpr float kTrials[] = {0.7f, 0.8f, 0.9f, 1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.55f, 1.7f, 1.9f};

enum class Delta { None, PerSubBlock, PerGroup };

// One sub-block's targets and the choice of points at a given scale.
struct SubBlock {
  const Codebook* cb = nullptr;
  int n = 0;               // elements
  Delta delta = Delta::None;
  float t[kMaxSub];        // targets: x times the chosen sign (IQ2/IQ3), or x (IQ1)
  float w[kMaxSub];
  uint8_t negative[kMaxSub] = {};  // the sign chosen for each element (IQ2/IQ3)
  // Set by choose():
  int point[kMaxSub / 4];
  uint8_t delta_negative[kMaxSub / 4];
  double sxv = 0, svv = 0;

  int groups() const { return n / cb->group; }

  double target_energy() const {
    double s = 0;
    for (int i = 0; i < n; ++i) s += double(w[i]) * t[i] * t[i];
    return s;
  }

  // Best point (and delta) of group g at scale s; returns its error, adds its sums.
  double choose_group(int g, float s, float delta, double& gxv, double& gvv, int& p) const {
    const int G = cb->group;
    const float* tg = t + g * G;
    const float* wg = w + g * G;
    float y[8];
    for (int j = 0; j < G; ++j) y[j] = tg[j] / s - delta;
    p = iq_search::best_point(*cb, y, wg);
    double err = 0;
    gxv = gvv = 0;
    for (int j = 0; j < G; ++j) {
      const double v = double(cb->value(p, j)) + delta;
      const double e = tg[j] - double(s) * v;
      err += wg[j] * e * e;
      gxv += wg[j] * tg[j] * v;
      gvv += wg[j] * v * v;
    }
    return err;
  }

  // Points (and deltas) for scale s > 0; returns the weighted squared error.
  double choose(float s) {
    const float d = iq::kIq1sDelta;
    if (delta == Delta::PerSubBlock) {
      double best = -1;
      int bp[kMaxSub / 4];
      double bxv = 0, bvv = 0;
      for (const int neg : {0, 1}) {
        double err = 0, xv = 0, vv = 0;
        int pts[kMaxSub / 4];
        for (int g = 0; g < groups(); ++g) {
          double gxv, gvv;
          err += choose_group(g, s, neg ? -d : d, gxv, gvv, pts[g]);
          xv += gxv, vv += gvv;
        }
        if (best < 0 || err < best) {
          best = err, bxv = xv, bvv = vv;
          std::copy(pts, pts + groups(), bp);
          for (int g = 0; g < groups(); ++g) delta_negative[g] = uint8_t(neg);
        }
      }
      std::copy(bp, bp + groups(), point);
      sxv = bxv, svv = bvv;
      return best;
    }
    double err = 0;
    sxv = svv = 0;
    for (int g = 0; g < groups(); ++g) {
      double gxv, gvv;
      if (delta == Delta::PerGroup) {
        int p1, p2;
        double xv2, vv2;
        const double e1 = choose_group(g, s, d, gxv, gvv, p1);
        const double e2 = choose_group(g, s, -d, xv2, vv2, p2);
        const bool neg = e2 < e1;
        point[g] = neg ? p2 : p1;
        delta_negative[g] = uint8_t(neg);
        err += neg ? e2 : e1;
        sxv += neg ? xv2 : gxv, svv += neg ? vv2 : gvv;
      } else {
        err += choose_group(g, s, 0.0f, gxv, gvv, point[g]);
        delta_negative[g] = 0;
        sxv += gxv, svv += gvv;
      }
    }
    return err;
  }
};

// Weights of one sub-block: the importance values, or all 1 when none are given or all are 0.
void sub_weights(const float* importance, int n, float* w) {
  bool any = false;
  for (int i = 0; importance && i < n; ++i) any = any || importance[i] > 0.0f;
  for (int i = 0; i < n; ++i) w[i] = any ? std::max(importance[i], 0.0f) : 1.0f;
}

// Sets up sb for x[0..n): weights, and for magnitude codebooks the signs (parity over each 8
// when `even_parity`).
void prepare(SubBlock& sb, const Codebook& cb, const float* x, const float* importance, int n, bool magnitudes,
             bool even_parity, Delta delta) {
  sb.cb = &cb;
  sb.n = n;
  sb.delta = delta;
  sub_weights(importance, n, sb.w);
  for (int i = 0; i < n; ++i) {
    sb.negative[i] = uint8_t(magnitudes && x[i] < 0);
    sb.t[i] = magnitudes ? std::fabs(x[i]) : x[i];
  }
  if (!even_parity) return;
  for (int o = 0; o < n; o += 8) {
    int count = 0, flip = o;
    for (int j = o; j < o + 8; ++j) {
      count += sb.negative[j];
      if (sb.w[j] * sb.t[j] < sb.w[flip] * sb.t[flip]) flip = j;
    }
    if (count % 2) sb.negative[flip] ^= 1, sb.t[flip] = -sb.t[flip];
  }
}

// Step 2: the continuous scale of a sub-block (0 for an all-zero one). top: the largest level
// value a target can be given.
float fit_scale(SubBlock& sb, float top) {
  float amax = 0;
  for (int i = 0; i < sb.n; ++i) amax = std::max(amax, std::fabs(sb.t[i]));
  if (amax == 0.0f) return 0.0f;
  float best = 0;
  double best_err = sb.target_energy();
  // Trials: the largest target on the top level or beyond it (kTrials), or on each lower level
  // (a sub-block of near-equal values fits a point whose elements are all one low level).
  float trials[std::size(kTrials) + 8];
  size_t count = 0;
  for (const float f : kTrials) trials[count++] = amax / (top * f);
  for (const float level : sb.cb->levels)
    if (level > 0 && level < top && count < std::size(trials)) trials[count++] = amax / level;
  for (size_t k = 0; k < count; ++k) {
    const float s = trials[k];
    double err = sb.choose(s);
    if (err < best_err) best_err = err, best = s;
    if (sb.svv <= 0 || sb.sxv <= 0) continue;
    const float refit = float(sb.sxv / sb.svv);
    err = sb.choose(refit);
    if (err < best_err) best_err = err, best = refit;
  }
  return best;
}

// Step 3: the integer scale in 0..smax (decoded scale unit * (2 q + 1)) that fits sb best, with
// sb's points chosen for it on return. unit == 0 (an all-zero super-block) gives 0.
int settle_scale(SubBlock& sb, float fitted, float unit, int smax) {
  if (unit == 0.0f) {
    for (int g = 0; g < sb.groups(); ++g) sb.point[g] = 0, sb.delta_negative[g] = 0;
    return 0;
  }
  const int q0 = std::clamp(int(std::lround((fitted / unit - 1.0f) / 2.0f)), 0, smax);
  int best = q0;
  double best_err = -1;
  for (int q = std::max(0, q0 - 1); q <= std::min(smax, q0 + 1); ++q) {
    const double err = sb.choose(unit * float(2 * q + 1));
    if (best_err < 0 || err < best_err) best_err = err, best = q;
  }
  sb.choose(unit * float(2 * best + 1));
  return best;
}

// The fp16 super-block scale for sub-block scales `fits`: the largest maps onto (2 smax + 1)
// units of unit_per_d * d. Returns the decoded unit (unit_per_d * d as the decoder reads d).
float super_scale(const float* fits, int count, float unit_per_d, int smax, uint16_t& d_bits) {
  float m = 0;
  for (int i = 0; i < count; ++i) m = std::max(m, fits[i]);
  d_bits = f32_to_f16(m / (unit_per_d * float(2 * smax + 1)));
  return unit_per_d * f16_to_f32(d_bits);
}

uint8_t sign_bits8(const SubBlock& sb, int offset) {
  unsigned s = 0;
  for (int j = 0; j < 8; ++j) s |= unsigned(sb.negative[offset + j]) << j;
  return uint8_t(s);
}

const float* sub_importance(const float* importance, int64_t offset) {
  return importance ? importance + offset : nullptr;
}

}  // namespace

void quantize_iq2_xxs(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ2_XXS*>(dst);
  const Codebook& cb = iq_search::iq2xxs_codebook();
  SubBlock sb[8];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[8];
    for (int r = 0; r < 8; ++r) {
      prepare(sb[r], cb, src + 32 * r, sub_importance(importance, b * kQKK + 32 * r), 32, true, true, Delta::None);
      fits[r] = fit_scale(sb[r], 43.0f);
    }
    BlockIQ2_XXS blk;
    const float unit = super_scale(fits, 8, 0.125f, 15, blk.d);
    for (int r = 0; r < 8; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 15);
      uint8_t idx[4];
      uint32_t aux = uint32_t(q) << 28;
      for (int g = 0; g < 4; ++g) {
        idx[g] = uint8_t(sb[r].point[g]);
        aux |= uint32_t(sign_bits8(sb[r], 8 * g) & 127) << (7 * g);
      }
      std::memcpy(blk.qs + 4 * r, idx, 4);
      std::memcpy(blk.qs + 4 * r + 2, &aux, 4);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

// IQ2_XS and IQ2_S: 16-element sub-blocks, 4-bit scales in nibbles of scales[sub / 2].
template <typename Block>
void quantize_iq2_16(const float* src, Block* blocks, int64_t nblocks, const float* importance, const Codebook& cb,
                     bool even_parity) {
  SubBlock sb[16];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[16];
    for (int r = 0; r < 16; ++r) {
      prepare(sb[r], cb, src + 16 * r, sub_importance(importance, b * kQKK + 16 * r), 16, true, even_parity,
              Delta::None);
      fits[r] = fit_scale(sb[r], 43.0f);
    }
    Block blk;
    std::memset(&blk, 0, sizeof blk);
    const float unit = super_scale(fits, 16, 0.125f, 15, blk.d);
    for (int r = 0; r < 16; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 15);
      blk.scales[r / 2] = uint8_t(blk.scales[r / 2] | (q << (4 * (r % 2))));
      for (int g = 0; g < 2; ++g) {
        const int group = 2 * r + g, p = sb[r].point[g];
        const uint8_t signs = sign_bits8(sb[r], 8 * g);
        if constexpr (sizeof(Block) == sizeof(BlockIQ2_XS)) {
          blk.qs[group] = uint16_t(p | ((signs & 127) << 9));
        } else {
          blk.qs[group] = uint8_t(p & 255);
          blk.qh[group / 4] = uint8_t(blk.qh[group / 4] | ((p >> 8) << (2 * (group % 4))));
          blk.qs[32 + group] = signs;
        }
      }
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_iq2_xs(const float* src, void* dst, int64_t nblocks, const float* importance) {
  quantize_iq2_16(src, static_cast<BlockIQ2_XS*>(dst), nblocks, importance, iq_search::iq2xs_codebook(), true);
}

void quantize_iq2_s(const float* src, void* dst, int64_t nblocks, const float* importance) {
  quantize_iq2_16(src, static_cast<BlockIQ2_S*>(dst), nblocks, importance, iq_search::iq2s_codebook(), false);
}

void quantize_iq3_xxs(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ3_XXS*>(dst);
  const Codebook& cb = iq_search::iq3xxs_codebook();
  SubBlock sb[8];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[8];
    for (int r = 0; r < 8; ++r) {
      prepare(sb[r], cb, src + 32 * r, sub_importance(importance, b * kQKK + 32 * r), 32, true, true, Delta::None);
      fits[r] = fit_scale(sb[r], 62.0f);
    }
    BlockIQ3_XXS blk;
    const float unit = super_scale(fits, 8, 0.25f, 15, blk.d);
    for (int r = 0; r < 8; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 15);
      uint32_t aux = uint32_t(q) << 28;
      for (int g = 0; g < 8; ++g) blk.qs[8 * r + g] = uint8_t(sb[r].point[g]);
      for (int s = 0; s < 4; ++s) aux |= uint32_t(sign_bits8(sb[r], 8 * s) & 127) << (7 * s);
      std::memcpy(blk.qs + 64 + 4 * r, &aux, 4);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_iq3_s(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ3_S*>(dst);
  const Codebook& cb = iq_search::iq3s_codebook();
  SubBlock sb[8];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[8];
    for (int r = 0; r < 8; ++r) {
      prepare(sb[r], cb, src + 32 * r, sub_importance(importance, b * kQKK + 32 * r), 32, true, false, Delta::None);
      fits[r] = fit_scale(sb[r], 15.0f);
    }
    BlockIQ3_S blk;
    std::memset(&blk, 0, sizeof blk);
    const float unit = super_scale(fits, 8, 1.0f, 15, blk.d);
    for (int r = 0; r < 8; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 15);
      blk.scales[r / 2] = uint8_t(blk.scales[r / 2] | (q << (4 * (r % 2))));
      for (int g = 0; g < 8; ++g) {
        const int p = sb[r].point[g];
        blk.qs[8 * r + g] = uint8_t(p & 255);
        blk.qh[r] = uint8_t(blk.qh[r] | ((p >> 8) << g));
      }
      for (int s = 0; s < 4; ++s) blk.signs[4 * r + s] = sign_bits8(sb[r], 8 * s);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_iq1_s(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ1_S*>(dst);
  const Codebook& cb = iq_search::iq1s_codebook();
  SubBlock sb[8];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[8];
    for (int r = 0; r < 8; ++r) {
      prepare(sb[r], cb, src + 32 * r, sub_importance(importance, b * kQKK + 32 * r), 32, false, false,
              Delta::PerSubBlock);
      fits[r] = fit_scale(sb[r], 1.0f + iq::kIq1sDelta);
    }
    BlockIQ1_S blk;
    const float unit = super_scale(fits, 8, 1.0f, 7, blk.d);
    for (int r = 0; r < 8; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 7);
      uint16_t h = uint16_t((q << 12) | (sb[r].delta_negative[0] << 15));
      for (int g = 0; g < 4; ++g) {
        const int p = sb[r].point[g];
        blk.qs[4 * r + g] = uint8_t(p & 255);
        h = uint16_t(h | ((p >> 8) << (3 * g)));
      }
      blk.qh[r] = h;
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_iq1_m(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ1_M*>(dst);
  const Codebook& cb = iq_search::iq1s_codebook();
  SubBlock sb[16];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    float fits[16];
    for (int r = 0; r < 16; ++r) {
      prepare(sb[r], cb, src + 16 * r, sub_importance(importance, b * kQKK + 16 * r), 16, false, false,
              Delta::PerGroup);
      fits[r] = fit_scale(sb[r], 1.0f + iq::kIq1sDelta);
    }
    uint16_t d_bits;
    const float unit = super_scale(fits, 16, 1.0f, 7, d_bits);
    BlockIQ1_M blk;
    std::memset(&blk, 0, sizeof blk);
    uint16_t sc[4] = {};
    for (int r = 0; r < 16; ++r) {
      const int q = settle_scale(sb[r], fits[r], unit, 7);
      sc[r / 4] = uint16_t(sc[r / 4] | (q << (3 * (r % 4))));
      for (int g = 0; g < 2; ++g) {
        const int group = 2 * r + g, p = sb[r].point[g];
        blk.qs[group] = uint8_t(p & 255);
        const unsigned nib = unsigned(p >> 8) | (unsigned(sb[r].delta_negative[g]) << 3);
        blk.qh[group / 2] = uint8_t(blk.qh[group / 2] | (nib << (4 * (group % 2))));
      }
    }
    // The fp16 super-scale goes into the top nibble of each scale word, low nibble first.
    for (int k = 0; k < 4; ++k) sc[k] = uint16_t(sc[k] | (((d_bits >> (4 * k)) & 0xF) << 12));
    std::memcpy(blk.scales, sc, sizeof sc);
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

}  // namespace tandem::row_codecs
