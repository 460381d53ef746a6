// The AMX tile operations amx_kernels.cpp uses, as the real instructions or (with
// TANDEM_AMX_EMULATE, for tests on CPUs without AMX) emulated in C++ with the same semantics:
// palette 1, eight tiles of up to 16 rows x 64 bytes, rows/colsb from the loaded configuration.
#pragma once

#include <cstdint>
#include <cstring>

namespace tandem::experts {

struct alignas(64) TileConfig {  // the 64-byte LDTILECFG operand, palette 1
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

}  // namespace tandem::experts

#ifndef TANDEM_AMX_EMULATE

#include <immintrin.h>

#define TILE_CONFIGURE(cfg) _tile_loadconfig(&(cfg))
#define TILE_ZERO(t) _tile_zero(t)
#define TILE_LOAD(t, base, stride) _tile_loadd(t, base, stride)
#define TILE_STORE(t, base, stride) _tile_stored(t, base, stride)
#define TILE_DPBSSD(c, a, b) _tile_dpbssd(c, a, b)
#define TILE_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)
#define TILE_RELEASE() _tile_release()

#else

namespace tandem::experts::amx_emulation {

struct Tiles {
  TileConfig cfg;
  alignas(64) uint8_t data[8][16][64];
};
inline thread_local Tiles tiles;

inline void zero(int t) { std::memset(tiles.data[t], 0, sizeof(tiles.data[t])); }
inline void load(int t, const void* base, int64_t stride) {
  zero(t);
  for (int r = 0; r < tiles.cfg.rows[t]; ++r)
    std::memcpy(tiles.data[t][r], static_cast<const uint8_t*>(base) + r * stride, tiles.cfg.colsb[t]);
}
inline void store(int t, void* base, int64_t stride) {
  for (int r = 0; r < tiles.cfg.rows[t]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, tiles.data[t][r], tiles.cfg.colsb[t]);
}
inline void dpbssd(int c, int a, int b) {  // C[m][n] += sum_k sum_i A[m][4k+i] * B[k][4n+i], int8
  for (int m = 0; m < tiles.cfg.rows[c]; ++m)
    for (int n = 0; n < tiles.cfg.colsb[c] / 4; ++n) {
      int32_t acc;
      std::memcpy(&acc, &tiles.data[c][m][4 * n], 4);
      for (int k = 0; k < tiles.cfg.colsb[a] / 4; ++k)
        for (int i = 0; i < 4; ++i)
          acc += int32_t(int8_t(tiles.data[a][m][4 * k + i])) * int8_t(tiles.data[b][k][4 * n + i]);
      std::memcpy(&tiles.data[c][m][4 * n], &acc, 4);
    }
}
inline float bf16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline void dpbf16ps(int c, int a, int b) {  // C[m][n] += sum_k sum_i A[m][2k+i] * B[k][2n+i], bf16 -> fp32
  for (int m = 0; m < tiles.cfg.rows[c]; ++m)
    for (int n = 0; n < tiles.cfg.colsb[c] / 4; ++n) {
      float acc;
      std::memcpy(&acc, &tiles.data[c][m][4 * n], 4);
      for (int k = 0; k < tiles.cfg.colsb[a] / 4; ++k)
        for (int i = 0; i < 2; ++i)
          acc += bf16_at(&tiles.data[a][m][4 * k + 2 * i]) * bf16_at(&tiles.data[b][k][4 * n + 2 * i]);
      std::memcpy(&tiles.data[c][m][4 * n], &acc, 4);
    }
}

}  // namespace tandem::experts::amx_emulation

#define TILE_CONFIGURE(cfg) (amx_emulation::tiles.cfg = (cfg))
#define TILE_ZERO(t) amx_emulation::zero(t)
#define TILE_LOAD(t, base, stride) amx_emulation::load(t, base, stride)
#define TILE_STORE(t, base, stride) amx_emulation::store(t, base, stride)
#define TILE_DPBSSD(c, a, b) amx_emulation::dpbssd(c, a, b)
#define TILE_DPBF16PS(c, a, b) amx_emulation::dpbf16ps(c, a, b)
#define TILE_RELEASE() ((void)0)

#endif
