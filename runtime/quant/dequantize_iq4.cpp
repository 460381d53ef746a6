// Decoders of the non-linear 4-bit types: every nibble indexes the 16-level codebook
// kIq4nlValues, times the block scale (IQ4_NL) or the super-scale times a 6-bit run scale
// minus 32 (IQ4_XS). Within each 32-element run, byte j holds element j in its low nibble and
// element j + 16 in its high nibble.
#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

void decode_run(const uint8_t* qs, float scale, float* dst) {
  for (int j = 0; j < 16; ++j) {
    dst[j] = scale * float(kIq4nlValues[qs[j] & 0xF]);
    dst[j + 16] = scale * float(kIq4nlValues[qs[j] >> 4]);
  }
}

}  // namespace

void dequantize_iq4_nl(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQK) decode_run(blocks[b].qs, f16_to_f32(blocks[b].d), dst);
}

int iq4_xs_run_scale(const BlockIQ4_XS& blk, int run) {
  const int low = (blk.scales_l[run / 2] >> (4 * (run % 2))) & 0xF;
  const int high = (blk.scales_h >> (2 * run)) & 3;
  return (low | (high << 4)) - 32;
}

void dequantize_iq4_xs(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockIQ4_XS*>(src);
  for (int64_t b = 0; b < nblocks; ++b) {
    const BlockIQ4_XS& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int run = 0; run < 8; ++run, dst += 32)
      decode_run(blk.qs + 16 * run, d * float(iq4_xs_run_scale(blk, run)), dst);
  }
}

}  // namespace tandem::row_codecs
