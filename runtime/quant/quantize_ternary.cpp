// Encoders of the ternary types TQ1_0 / TQ2_0 (element = d * t, t in -1, 0, +1; layouts in
// dequantize_ternary.cpp). The block scale is the weighted least-squares refit of the best of a
// few trial thresholds, so that the zero band is not simply half the largest magnitude.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

int ternary(float x, float inv) { return std::clamp(int(std::lround(x * inv)), -1, 1); }

float fit_ternary_scale(const float* x, const float* importance) {
  float w[kQKK];
  bool any = false;
  for (int i = 0; importance && i < kQKK; ++i) any = any || importance[i] > 0.0f;
  for (int i = 0; i < kQKK; ++i) w[i] = any ? std::max(importance[i], 0.0f) : 1.0f;
  float amax = 0;
  for (int i = 0; i < kQKK; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (amax == 0.0f) return 0.0f;
  double sxx = 0;
  for (int i = 0; i < kQKK; ++i) sxx += double(w[i]) * x[i] * x[i];
  float best = amax;
  double best_err = -1;
  for (int k = 2; k <= 20; ++k) {  // the scale maps amax onto 1 .. 2 levels
    const float inv = float(k) / (10.0f * amax);
    double sxt = 0, stt = 0;
    for (int i = 0; i < kQKK; ++i) {
      const int t = ternary(x[i], inv);
      sxt += double(w[i]) * x[i] * t, stt += double(w[i]) * t * t;
    }
    if (stt <= 0) continue;
    const double err = sxx - sxt * sxt / stt;
    if (best_err < 0 || err < best_err) best_err = err, best = float(sxt / stt);
  }
  return best;
}

// Digits t (0..2, most significant first) as the base-3 fraction byte the decoder reads.
uint8_t pack_trits(const int* t, int count) {
  int v = 0;
  for (int k = 0; k < count; ++k) v = v * 3 + t[k];
  for (int k = count; k < 5; ++k) v *= 3;
  return uint8_t((v * 256 + 242) / 243);
}

}  // namespace

void quantize_tq1_0(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockTQ1_0*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockTQ1_0 blk;
    blk.d = f32_to_f16(fit_ternary_scale(src, importance ? importance + b * kQKK : nullptr));
    const float d = f16_to_f32(blk.d), inv = d == 0.0f ? 0.0f : 1.0f / d;
    int t[5];
    for (int m = 0; m < 32; ++m) {
      for (int k = 0; k < 5; ++k) t[k] = ternary(src[32 * k + m], inv) + 1;
      blk.qs[m] = pack_trits(t, 5);
    }
    for (int m = 0; m < 16; ++m) {
      for (int k = 0; k < 5; ++k) t[k] = ternary(src[160 + 16 * k + m], inv) + 1;
      blk.qs[32 + m] = pack_trits(t, 5);
    }
    for (int m = 0; m < 4; ++m) {
      for (int k = 0; k < 4; ++k) t[k] = ternary(src[240 + 4 * k + m], inv) + 1;
      blk.qh[m] = pack_trits(t, 4);
    }
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

void quantize_tq2_0(const float* src, void* dst, int64_t nblocks, const float* importance) {
  auto* blocks = static_cast<BlockTQ2_0*>(dst);
  for (int64_t b = 0; b < nblocks; ++b, src += kQKK) {
    BlockTQ2_0 blk;
    std::memset(&blk, 0, sizeof blk);
    blk.d = f32_to_f16(fit_ternary_scale(src, importance ? importance + b * kQKK : nullptr));
    const float d = f16_to_f32(blk.d), inv = d == 0.0f ? 0.0f : 1.0f / d;
    for (int half = 0; half < 2; ++half)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m)
          blk.qs[32 * half + m] =
              uint8_t(blk.qs[32 * half + m] | ((ternary(src[128 * half + 32 * l + m], inv) + 1) << (2 * l)));
    std::memcpy(&blocks[b], &blk, sizeof blk);
  }
}

}  // namespace tandem::row_codecs
