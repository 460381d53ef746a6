// Decoders of the ternary types: every element is d * (t - 1), t in 0..2. TQ2_0 keeps t in 2 bits
// (byte m of each 32-byte half holds elements m, m+32, m+64, m+96 of that half's 128, low bits
// first). TQ1_0 packs 5 trits per byte as a base-3 fraction: byte = ceil(256 * v / 243) for the
// 5-digit number v, so multiplying by 3^k (mod 256) brings digit k to the top, where
// (byte * 3) >> 8 reads it. qs[0..31] hold elements 0..159 (digit k of byte m: element 32k+m),
// qs[32..47] elements 160..239 (16k+m), qh[0..3] 4 digits each for 240..255 (4k+m).
#include "runtime/core/half.h"
#include "runtime/quant/block_formats.h"
#include "runtime/quant/row_codecs.h"

namespace tandem::row_codecs {
namespace {

int trit(uint8_t byte, int k) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = uint8_t(byte * kPow3[k]);
  return (int(q) * 3) >> 8;
}

}  // namespace

void dequantize_tq1_0(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockTQ1_0*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQKK) {
    const BlockTQ1_0& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 32; ++m) dst[32 * k + m] = d * float(trit(blk.qs[m], k) - 1);
    for (int k = 0; k < 5; ++k)
      for (int m = 0; m < 16; ++m) dst[160 + 16 * k + m] = d * float(trit(blk.qs[32 + m], k) - 1);
    for (int k = 0; k < 4; ++k)
      for (int m = 0; m < 4; ++m) dst[240 + 4 * k + m] = d * float(trit(blk.qh[m], k) - 1);
  }
}

void dequantize_tq2_0(const void* src, float* dst, int64_t nblocks) {
  const auto* blocks = static_cast<const BlockTQ2_0*>(src);
  for (int64_t b = 0; b < nblocks; ++b, dst += kQKK) {
    const BlockTQ2_0& blk = blocks[b];
    const float d = f16_to_f32(blk.d);
    for (int half = 0; half < 2; ++half)
      for (int l = 0; l < 4; ++l)
        for (int m = 0; m < 32; ++m)
          dst[128 * half + 32 * l + m] = d * float(((blk.qs[32 * half + m] >> (2 * l)) & 3) - 1);
  }
}

}  // namespace tandem::row_codecs
