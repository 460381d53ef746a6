// Encoders of the non-linear 4-bit types. Each 32-element run gets the scale s that minimises
// the weighted squared error sum_i w_i (x_i - s * level(x_i / s))^2, where level() is the
// nearest codebook entry: trial scales map the run's largest magnitude onto either end of the
// (asymmetric) codebook, a little inside or outside it; each trial's nearest levels are refitted
// by weighted least squares and the best refit wins. The weights are the importance matrix
// (mean squared activation of each input column) when given, else all equal, so that columns
// the model leans on are reproduced more closely.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/rounding.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

constexpr int kRun = 32;
// Trials place the extreme at (1 + kStep * k) times an end level, k in -kSteps..kSteps.
constexpr int kSteps = 8;
constexpr float kStep = 0.025f;

// Index of the codebook level nearest to v (v in level units).
int nearest_level(float v) {
  if (!(v > float(kIq4nlValues[0]))) return 0;
  if (v >= float(kIq4nlValues[15])) return 15;
  int lo = 0, hi = 15;  // kIq4nlValues[lo] <= v < kIq4nlValues[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (float(kIq4nlValues[mid]) <= v ? lo : hi) = mid;
  }
  return v - float(kIq4nlValues[lo]) <= float(kIq4nlValues[hi]) - v ? lo : hi;
}

double run_error(const float* x, const float* w, float scale) {
  const float inv = scale == 0.0f ? 0.0f : 1.0f / scale;
  double err = 0;
  for (int i = 0; i < kRun; ++i) {
    const double e = double(x[i]) - double(scale) * kIq4nlValues[nearest_level(x[i] * inv)];
    err += w[i] * e * e;
  }
  return err;
}

// Weights of one run into w: the importance values, or all 1 when none are given or they are
// all 0 (a column no calibration token reached still has to be encoded somehow).
void run_weights(const float* importance, float* w) {
  bool any = false;
  for (int i = 0; importance && i < kRun; ++i) any = any || importance[i] > 0.0f;
  for (int i = 0; i < kRun; ++i) w[i] = any ? std::max(importance[i], 0.0f) : 1.0f;
}

float fit_run_scale(const float* x, const float* w) {
  float extreme = 0;
  for (int i = 0; i < kRun; ++i)
    if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
  if (extreme == 0.0f) return 0.0f;
  double sxx = 0;
  for (int i = 0; i < kRun; ++i) sxx += w[i] * double(x[i]) * x[i];
  float best = 0.0f;
  double best_err = sxx;  // scale 0
  for (const int end : {int(kIq4nlValues[0]), int(kIq4nlValues[15])}) {
    for (int k = -kSteps; k <= kSteps; ++k) {
      const float inv = float(end) * (1.0f + kStep * float(k)) / extreme;
      double sxl = 0, sll = 0;
      for (int i = 0; i < kRun; ++i) {
        const double l = kIq4nlValues[nearest_level(x[i] * inv)];
        sxl += w[i] * x[i] * l;
        sll += w[i] * l * l;
      }
      if (sll <= 0) continue;
      // The refit's error with these levels, sum w x^2 - sxl^2 / sll: an upper bound of its
      // error once every element takes its nearest level under the refit scale.
      const double err = sxx - sxl * sxl / sll;
      if (err < best_err) best_err = err, best = float(sxl / sll);
    }
  }
  return best;
}

void encode_run(const float* x, float scale, uint8_t* qs) {
  const float inv = scale == 0.0f ? 0.0f : 1.0f / scale;
  for (int j = 0; j < 16; ++j)
    qs[j] = uint8_t(nearest_level(x[j] * inv) | (nearest_level(x[j + 16] * inv) << 4));
}

}  // namespace

void quantize_iq4_nl(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ4_NL*>(dst);
  float w[kRun];
  for (int64_t b = 0; b < nblocks; ++b, src += kRun) {
    run_weights(importance ? importance + b * kRun : nullptr, w);
    BlockIQ4_NL& blk = blocks[b];
    blk.d = f32_to_f16(fit_run_scale(src, w));
    encode_run(src, f16_to_f32(blk.d), blk.qs);  // against the scale the decoder will read
  }
}

void quantize_iq4_xs(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockIQ4_XS*>(dst);
  float w[8][kRun];
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockIQ4_XS blk;
    std::memset(&blk, 0, sizeof blk);
    float fits[8], extreme = 0;
    for (int r = 0; r < 8; ++r) {
      run_weights(importance ? importance + b * kQKK + r * kRun : nullptr, w[r]);
      fits[r] = fit_run_scale(src + r * kRun, w[r]);
      if (std::fabs(fits[r]) > std::fabs(extreme)) extreme = fits[r];
    }
    // The largest run scale maps onto -32, the end of the 6-bit range with one more step.
    blk.d = f32_to_f16(extreme / -32.0f);
    const float d = f16_to_f32(blk.d);
    for (int r = 0; r < 8; ++r) {
      const float* x = src + r * kRun;
      // Rounding the fitted scale to the 6-bit grid can land on the worse neighbour.
      const int l0 = quantize_value(fits[r], d, -32, 31);
      int best = l0;
      double best_err = -1;
      for (int l = std::max(-32, l0 - 1); l <= std::min(31, l0 + 1); ++l) {
        const double err = run_error(x, w[r], d * float(l));
        if (best_err < 0 || err < best_err) best_err = err, best = l;
      }
      const int stored = best + 32;
      blk.scales_l[r / 2] = uint8_t(blk.scales_l[r / 2] | ((stored & 0xF) << (4 * (r % 2))));
      blk.scales_h = uint16_t(blk.scales_h | ((stored >> 4) << (2 * r)));
      encode_run(x, d * float(best), blk.qs + 16 * r);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

}  // namespace tandem::row_codecs
