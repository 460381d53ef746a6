// Repacking of Q4_K rows into the prefill layout, and the scalar definition of its tile kernel
// (what the AVX-512 kernel is tested against).
#include "experts/kernels/repacked_q4k.h"

#include <cstring>

#include "experts/activation_blocks.h"
#include "experts/kernels/block_fields.h"
#include "runtime/quant/block_formats.h"

namespace tandem::experts {

void repack_q4k_rows(const uint8_t* rows, int64_t row_bytes, int64_t n_rows, int64_t cols, uint8_t* dst) {
  const int64_t n_blocks = cols / 256, n_groups = (n_rows + kRepackRows - 1) / kRepackRows;
  std::memset(dst, 0, size_t(repacked_bytes(n_rows, cols)));
  for (int64_t g = 0; g < n_groups; ++g) {
    for (int64_t r = 0; r < kRepackRows && g * kRepackRows + r < n_rows; ++r) {
      const auto* blocks = reinterpret_cast<const BlockQ4_K*>(rows + (g * kRepackRows + r) * row_bytes);
      for (int64_t b = 0; b < n_blocks; ++b) {
        const BlockQ4_K& blk = blocks[b];
        uint8_t* out = dst + g * repacked_group_bytes(cols) + b * kRepackedBlockBytes;
        float* scale = reinterpret_cast<float*>(out + 4096);
        float* min = scale + 8 * 16;
        const float d = half_to_float(blk.d), dmin = half_to_float(blk.dmin);
        for (int s = 0; s < 8; ++s) {
          int sc, m;
          k4_scale_min(blk.scales, s, &sc, &m);
          scale[s * 16 + r] = d * float(sc);
          min[s * 16 + r] = dmin * float(m);
        }
        for (int i = 0; i < 256; ++i) {
          const int byte = blk.qs[32 * (i / 64) + i % 32];
          const int q = (i % 64) < 32 ? (byte & 0xF) : (byte >> 4);
          out[(i / 4) * 64 + r * 4 + i % 4] = uint8_t(q);
        }
      }
    }
  }
}

void q8k_sub_block_sums(const void* act_row, int64_t cols, float* out) {
  const auto* a = static_cast<const ActBlockQ8K*>(act_row);
  for (int64_t b = 0; b < cols / 256; ++b)
    for (int s = 0; s < 8; ++s) out[b * 8 + s] = a[b].d * float(a[b].bsums[2 * s] + a[b].bsums[2 * s + 1]);
}

void repacked_q4k_tile_scalar(const uint8_t* group, int64_t cols, const void* const* acts,
                              const float* const* act_sums, int n_tokens, float* out) {
  for (int t = 0; t < n_tokens; ++t) {
    const auto* a = static_cast<const ActBlockQ8K*>(acts[t]);
    for (int r = 0; r < kRepackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < cols / 256; ++b) {
        const uint8_t* q = group + b * kRepackedBlockBytes;
        const float* scale = reinterpret_cast<const float*>(q + 4096);
        const float* min = scale + 8 * 16;
        float block = 0;
        for (int s = 0; s < 8; ++s) {
          int32_t sum = 0;
          for (int i = 32 * s; i < 32 * s + 32; ++i) sum += int32_t(q[(i / 4) * 64 + r * 4 + i % 4]) * a[b].qs[i];
          block += scale[s * 16 + r] * float(sum);
          acc -= min[s * 16 + r] * act_sums[t][b * 8 + s];
        }
        acc += a[b].d * block;
      }
      out[t * kRepackRows + r] = acc;
    }
  }
}

}  // namespace tandem::experts
