// AMX tile kernels over the layout of amx_layout.h: 16 tokens x 16 weight rows per call.
//   int8: per step (one weight sub-block), TDPBSSD of the tokens' int8 values (A, 16 x 32 or
//   16 x 16 bytes) with the step's quants (B, VNNI order), then the int32 tile goes through L1
//   into 16 fp32 accumulators: acc[t] += cvt(C[t]) * (scale * act_scale[t]) - min * act_sum[t].
//   Two steps are in flight (tiles 0/2/4 and 1/3/5) so one TDPBSSD runs while the other's
//   result is scaled.
//   bf16: TDPBF16PS accumulates in the tile over all columns (two chains, tiles 0 and 1).
// Compiled with -mamx-tile -mamx-int8 -mamx-bf16 (and avx512); run only where
// cpu_supports(CpuIsa::Amx). With TANDEM_AMX_EMULATE the same source builds the amx_emulated
// kernels (tile instructions in C++, amx_tiles.h) that tests run on any AVX-512 CPU.
#include <immintrin.h>

#include <cstring>

// GCC 12 reports the undefined source operand inside avx512fintrin.h's masked converts as
// maybe-uninitialized (a false positive of its -O2 inlining); nothing here reads uninitialized data.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "experts/kernels/amx_layout.h"
#include "experts/kernels/amx_tiles.h"

#ifndef TANDEM_AMX_NAMESPACE
#define TANDEM_AMX_NAMESPACE amx
#endif

namespace tandem::experts::TANDEM_AMX_NAMESPACE {
namespace {

TileConfig int8_config(int step_cols) {
  TileConfig c;
  for (int t = 0; t < 2; ++t) c.rows[t] = 16, c.colsb[t] = 64;                        // C: tokens x rows, int32
  for (int t = 2; t < 4; ++t) c.rows[t] = 16, c.colsb[t] = uint16_t(step_cols);       // A: tokens x step
  for (int t = 4; t < 6; ++t) c.rows[t] = uint8_t(step_cols / 4), c.colsb[t] = 64;    // B: step/4 x rows*4
  return c;
}

TileConfig bf16_config() {
  TileConfig c;
  for (int t = 0; t < 6; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  return c;
}

template <int kStepCols, bool kMin>
void tile_int8(const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out) {
  constexpr int64_t kStepBytes = kStepCols * 16 + 64 * (kMin ? 2 : 1);
  const int64_t steps = cols / kStepCols;
  const int8_t* a = acts.values.as<int8_t>();
  const float* act_scale = acts.scale.as<float>();
  const float* act_sum = acts.sum.as<float>();
  const TileConfig cfg = int8_config(kStepCols);
  TILE_CONFIGURE(cfg);
  alignas(64) int32_t c[2][16][16];
  __m512 acc[16];
  #pragma GCC unroll 16
  for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
  auto scale_step = [&](int64_t s, const uint8_t* step, const int32_t (*ct)[16]) {
    const __m512 sv = _mm512_load_ps(reinterpret_cast<const float*>(step + kStepCols * 16));
    const float* as = act_scale + s * 16;
    #pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) {
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_load_si512(ct[t]));
      acc[t] = _mm512_fmadd_ps(dot, _mm512_mul_ps(sv, _mm512_set1_ps(as[t])), acc[t]);
    }
    if constexpr (kMin) {
      const __m512 mv = _mm512_load_ps(reinterpret_cast<const float*>(step + kStepCols * 16 + 64));
      const float* am = act_sum + s * 16;
      #pragma GCC unroll 16
      for (int t = 0; t < 16; ++t) acc[t] = _mm512_fnmadd_ps(mv, _mm512_set1_ps(am[t]), acc[t]);
    }
  };
  int64_t s = 0;
  for (; s + 1 < steps; s += 2) {
    const uint8_t* step0 = group + s * kStepBytes;
    TILE_ZERO(0);
    TILE_LOAD(2, a + s * kStepCols, cols);
    TILE_LOAD(4, step0, 64);
    TILE_DPBSSD(0, 2, 4);
    TILE_ZERO(1);
    TILE_LOAD(3, a + (s + 1) * kStepCols, cols);
    TILE_LOAD(5, step0 + kStepBytes, 64);
    TILE_DPBSSD(1, 3, 5);
    TILE_STORE(0, c[0], 64);
    scale_step(s, step0, c[0]);
    TILE_STORE(1, c[1], 64);
    scale_step(s + 1, step0 + kStepBytes, c[1]);
  }
  if (s < steps) {  // odd step count
    TILE_ZERO(0);
    TILE_LOAD(2, a + s * kStepCols, cols);
    TILE_LOAD(4, group + s * kStepBytes, 64);
    TILE_DPBSSD(0, 2, 4);
    TILE_STORE(0, c[0], 64);
    scale_step(s, group + s * kStepBytes, c[0]);
  }
  TILE_RELEASE();
  #pragma GCC unroll 16
  for (int t = 0; t < 16; ++t) _mm512_storeu_ps(out + t * kAmxRows, acc[t]);
}

void tile_bf16(const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out) {
  const int64_t steps = cols / 32;
  const uint16_t* a = acts.values.as<uint16_t>();
  const TileConfig cfg = bf16_config();
  TILE_CONFIGURE(cfg);
  TILE_ZERO(0);
  TILE_ZERO(1);
  int64_t s = 0;
  for (; s + 1 < steps; s += 2) {
    TILE_LOAD(2, a + s * 32, cols * 2);
    TILE_LOAD(4, group + s * 1024, 64);
    TILE_DPBF16PS(0, 2, 4);
    TILE_LOAD(3, a + (s + 1) * 32, cols * 2);
    TILE_LOAD(5, group + (s + 1) * 1024, 64);
    TILE_DPBF16PS(1, 3, 5);
  }
  if (s < steps) {
    TILE_LOAD(2, a + s * 32, cols * 2);
    TILE_LOAD(4, group + s * 1024, 64);
    TILE_DPBF16PS(0, 2, 4);
  }
  alignas(64) float c[2][16][16];
  TILE_STORE(0, c[0], 64);
  TILE_STORE(1, c[1], 64);
  TILE_RELEASE();
  for (int t = 0; t < 16; ++t) _mm512_storeu_ps(out + t * kAmxRows, _mm512_add_ps(_mm512_load_ps(c[0][t]), _mm512_load_ps(c[1][t])));
}

// fp32 -> bf16, round to nearest even, 16 at a time (AVX-512F only).
inline __m256i to_bf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

}  // namespace

void gather(const AmxFormat& f, const void* const* act_rows, int n_tokens, int64_t cols, AmxTokenBlock& out) {
  out.reserve(f, cols);
  out.n_tokens = n_tokens;
  const int64_t steps = cols / f.step_cols;
  if (f.bf16) {
    uint16_t* v = out.values.as<uint16_t>();
    for (int t = 0; t < n_tokens; ++t) {
      const float* x = static_cast<const float*>(act_rows[t]);
      uint16_t* dst = v + t * cols;
      for (int64_t i = 0; i < cols; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), to_bf16(_mm512_loadu_ps(x + i)));
    }
    std::memset(v + n_tokens * cols, 0, size_t((kAmxTokens - n_tokens) * cols) * 2);
    return;
  }
  int8_t* v = out.values.as<int8_t>();
  float* scale = out.scale.as<float>();
  float* sum = out.sum.as<float>();
  std::memset(scale, 0, size_t(steps * kAmxTokens) * sizeof(float));
  std::memset(sum, 0, size_t(steps * kAmxTokens) * sizeof(float));
  for (int t = 0; t < n_tokens; ++t) {
    int8_t* dst = v + t * cols;
    if (f.act == ActFormat::Q8K) {
      const auto* blk = static_cast<const ActBlockQ8K*>(act_rows[t]);
      const int per_block = 256 / f.step_cols;
      for (int64_t b = 0; b < cols / 256; ++b) {
        std::memcpy(dst + b * 256, blk[b].qs, 256);
        for (int j = 0; j < per_block; ++j) {
          const int64_t s = b * per_block + j;
          scale[s * 16 + t] = blk[b].d;
          if (f.has_min) {
            const int bs = f.step_cols == 32 ? blk[b].bsums[2 * j] + blk[b].bsums[2 * j + 1] : blk[b].bsums[j];
            sum[s * 16 + t] = blk[b].d * float(bs);
          }
        }
      }
    } else {  // Q8: one step per 32-value block
      const auto* blk = static_cast<const ActBlockQ8*>(act_rows[t]);
      for (int64_t b = 0; b < cols / 32; ++b) {
        std::memcpy(dst + b * 32, blk[b].qs, 32);
        scale[b * 16 + t] = blk[b].d;
        if (f.has_min) sum[b * 16 + t] = blk[b].d * float(blk[b].sum);
      }
    }
  }
  std::memset(v + n_tokens * cols, 0, size_t((kAmxTokens - n_tokens) * cols));
}

void tile(const AmxFormat& f, const uint8_t* group, int64_t cols, const AmxTokenBlock& acts, float* out) {
  if (f.bf16) return tile_bf16(group, cols, acts, out);
  if (f.step_cols == 16) return f.has_min ? tile_int8<16, true>(group, cols, acts, out)
                                          : tile_int8<16, false>(group, cols, acts, out);
  return f.has_min ? tile_int8<32, true>(group, cols, acts, out) : tile_int8<32, false>(group, cols, acts, out);
}

}  // namespace tandem::experts::TANDEM_AMX_NAMESPACE
